"""The text-embedding model: WordLlama, whose weights and tokenizer ship inside the
``wordllama`` wheel. It is loaded from the package's own folder with downloads disabled, once
per process, in a worker thread (loading and embedding never block the event loop)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np

MODEL_NAME = "wordllama-l2_supercat-256"
"""Goes into every stored text hash: another model re-embeds everything."""

_lock = threading.Lock()
_model: Any = None


def load_model() -> Any:
    """The process's WordLlama model (loaded on first use; nothing is downloaded)."""
    global _model
    with _lock:
        if _model is None:
            import wordllama
            from wordllama import WordLlama

            _model = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
        return _model


def embed_now(texts: list[str]) -> np.ndarray:
    """Unit-length float32 embeddings of ``texts``, one row each (blocking)."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    vectors = np.asarray(load_model().embed(texts, norm=True), dtype=np.float32)
    return vectors


async def embed(texts: list[str]) -> np.ndarray:
    """:func:`embed_now` in a worker thread."""
    return await asyncio.to_thread(embed_now, texts)


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f4")

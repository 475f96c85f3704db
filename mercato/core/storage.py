"""Where uploaded files live: the ``Storage`` protocol that ``get_storage`` returns."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class StorageError(Exception):
    """A file could not be stored, found or removed."""


@runtime_checkable
class Storage(Protocol):
    """Keeps files under keys the core makes up (never user-supplied names).

    Keys look like ``avatars/2f1c…9a.webp``: a folder, a random name, a safe extension.
    """

    async def save(self, key: str, data: bytes, *, content_type: str) -> None:
        """Store ``data`` under ``key`` (replacing nothing: keys are fresh)."""
        ...

    async def load(self, key: str) -> bytes:
        """Return the bytes under ``key``; raise :class:`FileNotFoundError` when absent."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""
        ...

    def url(self, key: str) -> str:
        """A URL the browser can fetch the file from."""
        ...

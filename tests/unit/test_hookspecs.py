"""Every hook is documented in docs/plugins/hooks.md and exercised by a test."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from mercato.core import hookspecs

ROOT = Path(__file__).resolve().parents[2]
HOOKS = sorted(
    name for name, value in vars(hookspecs).items()
    if inspect.isfunction(value) and hasattr(value, "mercato_spec")
)


def test_there_are_hooks() -> None:
    assert "register_routes" in HOOKS
    assert len(HOOKS) >= 13


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook: str) -> None:
    docs = (ROOT / "docs" / "plugins" / "hooks.md").read_text()
    assert re.search(rf"^### {hook}\b", docs, re.MULTILINE), f"document `{hook}` in docs/plugins/hooks.md"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_docstring_naming_its_version(hook: str) -> None:
    doc = getattr(hookspecs, hook).__doc__ or ""
    assert "Since " in doc, f"say since which version `{hook}` exists"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_implemented_in_a_test(hook: str) -> None:
    """A hook counts as tested when some test (or the example plugin it loads) implements it."""
    sources = [p for p in (ROOT / "tests").rglob("*.py") if p.name != "test_hookspecs.py"]
    sources += list((ROOT / "examples").rglob("*.py"))
    pattern = re.compile(rf"def {hook}\(")
    assert any(pattern.search(p.read_text()) for p in sources), f"write a test implementing `{hook}`"

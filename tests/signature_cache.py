"""Parse each handler's signature once per test session, not once per app.

Tests build several hundred Litestar apps. Litestar copies every route handler into each new
app and parses the copy's signature again (``ParsedSignature.from_fn``: ``get_type_hints`` on
string annotations, which hashes every ``Annotated[..., Parameter(...)]`` through
``dataclasses.asdict``). That was two thirds of the time to build an app, about 0.4 s of every
test.

The parse is a pure function of the function's code, its globals, defaults and annotations, and
the signature namespace, so the result is reused when all of those are the same objects. Each
cache entry holds the function and namespace it was made from, so the ids in its key cannot be
reused by other objects while it lives.
"""

from __future__ import annotations

from typing import Any

from litestar.utils import signature

_parse = signature.ParsedSignature.from_fn.__func__  # type: ignore[attr-defined]
_parsed: dict[tuple[Any, ...], tuple[Any, Any, dict[str, Any]]] = {}


def _key(fn: Any, namespace: dict[str, Any]) -> tuple[Any, ...] | None:
    func = getattr(fn, "__func__", fn)  # a controller's bound method
    code = getattr(func, "__code__", None)
    if code is None:
        return None

    def ids(items: Any) -> tuple[tuple[Any, int], ...]:
        return tuple((name, id(value)) for name, value in items)

    return (
        code, func is not fn, id(func.__globals__),
        ids(enumerate(func.__defaults__ or ())), ids((func.__kwdefaults__ or {}).items()),
        ids(func.__annotations__.items()), ids(namespace.items()),
    )


def _from_fn(cls: Any, fn: Any, signature_namespace: dict[str, Any]) -> Any:
    key = _key(fn, signature_namespace)
    if key is None:
        return _parse(cls, fn, signature_namespace)
    entry = _parsed.get(key)
    if entry is None:
        entry = _parsed[key] = (_parse(cls, fn, signature_namespace), fn, dict(signature_namespace))
    return entry[0]


def install() -> None:
    signature.ParsedSignature.from_fn = classmethod(_from_fn)  # type: ignore[method-assign,assignment]

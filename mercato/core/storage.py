"""Where uploaded files live: the ``Storage`` protocol that ``get_storage`` returns."""

from __future__ import annotations

import posixpath
from typing import Protocol, runtime_checkable

PRIVATE_FOLDERS: tuple[str, ...] = ("attachments/",)
"""Key prefixes of files only some people may read (project and proposal attachments). The
core hands them out itself, after checking access; a storage must not serve them at a public
URL of its own (``local_storage`` answers 404 for them under ``/media``)."""


def is_private(key: str) -> bool:
    """Whether ``key`` (as given in a URL: normalised first) lies in a private folder."""
    return posixpath.normpath("/" + key).lstrip("/").startswith(PRIVATE_FOLDERS)


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

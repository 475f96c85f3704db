"""Built-in plugin: uploaded files on the local disk, under ``<data_dir>/uploads/``, served at
``GET /media/<key>``.

It answers ``get_storage`` last, so any plugin that keeps files elsewhere (S3, a CDN) wins
simply by implementing the hook. Keys are checked against a strict pattern before they touch
the file system, so a key can never name a file outside the uploads folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from litestar import get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import File

from mercato import hookimpl
from mercato.core.site import Site
from mercato.core.storage import StorageError, is_private

UPLOADS_DIR = "uploads"
MEDIA_PATH = "/media"

KEY_PATTERN = re.compile(r"[a-z0-9_-]{1,100}/[a-z0-9_-]{1,100}\.[a-z0-9]{1,10}")
"""``<folder>/<name>.<ext>``: no dots but the extension's, no slashes but the folder's."""

CONTENT_TYPES: dict[str, str] = {
    "webp": "image/webp",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "pdf": "application/pdf",
    "txt": "text/plain",  # Litestar adds "; charset=utf-8"
}
"""Types served inline; any other extension is sent as an ``application/octet-stream`` download."""

MEDIA_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    # Keys are random and never reused, so a file under a key never changes.
    "Cache-Control": "public, max-age=31536000, immutable",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox",
}


def check_key(key: str) -> str:
    """Return ``key`` if it is a valid storage key, else raise :class:`StorageError`."""
    if not KEY_PATTERN.fullmatch(key):
        raise StorageError(f"invalid storage key {key!r}: expected `<folder>/<name>.<ext>` "
                           "made of a-z, 0-9, `_` and `-`")
    return key


class LocalStorage:
    """A :class:`~mercato.core.storage.Storage` keeping each key at ``<root>/<key>``."""

    def __init__(self, root: Path, *, url_prefix: str = MEDIA_PATH) -> None:
        self.root = root
        self.url_prefix = url_prefix.rstrip("/")

    def path(self, key: str) -> Path:
        """The file behind ``key`` (which need not exist); invalid keys raise :class:`StorageError`."""
        return self.root / check_key(key)

    async def save(self, key: str, data: bytes, *, content_type: str) -> None:
        """Write ``data`` to a temporary file beside the target, then rename it into place."""
        await asyncio.to_thread(_write_atomically, self.path(key), data)

    async def load(self, key: str) -> bytes:
        """The bytes under ``key``; :class:`FileNotFoundError` when absent."""
        return await asyncio.to_thread(self.path(key).read_bytes)

    async def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""
        await asyncio.to_thread(self.path(key).unlink, missing_ok=True)

    def url(self, key: str) -> str:
        """``/media/<key>``, served by this plugin."""
        return f"{self.url_prefix}/{check_key(key)}"


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A leading dot keeps the temporary name from ever matching KEY_PATTERN (never served).
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


_storages: WeakKeyDictionary[Site, LocalStorage] = WeakKeyDictionary()


def storage_for(site: Site) -> LocalStorage:
    """The one :class:`LocalStorage` of ``site`` (made on first use)."""
    storage = _storages.get(site)
    if storage is None:
        storage = _storages[site] = LocalStorage(site.settings.data_path / UPLOADS_DIR)
    return storage


@get(f"{MEDIA_PATH}/{{key:path}}", include_in_schema=False, name="media")
async def media(key: FromPath[str], site: NamedDependency[Site]) -> File:
    """Serve an uploaded file with a type taken from its extension, never from its content.
    Private files (attachments) are not served here: their routes check who asks."""
    if is_private(key):
        raise NotFoundException()
    storage = storage_for(site)
    try:
        path = storage.path(key.removeprefix("/"))
        info = await asyncio.to_thread(os.stat, path)
    except (StorageError, OSError):
        raise NotFoundException() from None
    if not stat.S_ISREG(info.st_mode):
        raise NotFoundException()
    extension = path.suffix.removeprefix(".")
    content_type = CONTENT_TYPES.get(extension)
    return File(
        path,
        stat_result=info,
        media_type=content_type or "application/octet-stream",
        content_disposition_type="inline" if content_type else "attachment",
        headers=MEDIA_HEADERS,
    )


@hookimpl(trylast=True)
def get_storage(site: Site) -> LocalStorage:
    return storage_for(site)


@hookimpl
def register_routes(site: Site) -> list[Any]:
    return [media]

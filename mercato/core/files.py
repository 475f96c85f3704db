"""Uploaded documents (attachments), made safe to keep and to hand out again.

Uploads are untrusted: the type is decided by the file's content (magic bytes, the parts of a
ZIP container, UTF-8 for text), and must agree with the name's extension, so a script renamed
``report.pdf`` is refused. The name people gave the file is kept only for display and for
``Content-Disposition``, cleaned of paths, control and bidi characters; the file itself is
stored under a random key the core makes up. The content type sent back is always the one
that belongs to the detected kind, never the one the uploader claimed.
"""

from __future__ import annotations

import asyncio
import io
import re
import secrets
import unicodedata
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from litestar.exceptions import HTTPException

from mercato.core.errors import field_error
from mercato.core.images import format_bytes

if TYPE_CHECKING:
    from mercato.core.storage import Storage

CONTENT_TYPES: dict[str, str] = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "txt": "text/plain",  # checked to be UTF-8; served with "; charset=utf-8"
    "md": "text/markdown",
    "zip": "application/zip",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
"""The extensions an attachment may have, and the type it is served with."""

ALLOWED_TEXT = (
    "PDF, PNG, JPEG, WebP, GIF, TXT, Markdown, ZIP, Word (.docx), Excel (.xlsx) or PowerPoint (.pptx)"
)

_KIND_OF_EXTENSION = {"jpg": "jpeg", "txt": "text", "md": "text"}
"""Extensions whose detected kind has another name; the rest are their own kind."""
_ZIP_KINDS = frozenset({"zip", "docx", "xlsx", "pptx"})
_OOXML_FOLDERS = (("word/", "docx"), ("xl/", "xlsx"), ("ppt/", "pptx"))
_KIND_LABELS = {
    "pdf": "a PDF document",
    "png": "a PNG image",
    "jpeg": "a JPEG image",
    "webp": "a WebP image",
    "gif": "a GIF image",
    "text": "plain text",
    "zip": "a ZIP archive",
    "docx": "a Word document",
    "xlsx": "an Excel workbook",
    "pptx": "a PowerPoint presentation",
}
_FORBIDDEN_IN_NAMES = re.compile(r'[<>:"|?*]')
MAX_NAME_LENGTH = 150


class FileTooLarge(HTTPException):
    """The file is larger than ``[uploads] max_attachment_bytes`` (413)."""

    status_code = 413


@dataclass(frozen=True, slots=True)
class CheckedFile:
    """An upload that passed :func:`check_file`: its clean name, type and bytes."""

    filename: str
    extension: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True, slots=True)
class StoredFile:
    """Where :func:`store_file` put a checked upload."""

    key: str
    filename: str
    content_type: str
    size: int


def clean_filename(name: str) -> str:
    """The last path part of ``name`` without control, format (bidi) or shell-unfriendly
    characters, NFC-normalised and at most :data:`MAX_NAME_LENGTH` characters (the extension kept)."""
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    name = " ".join(_FORBIDDEN_IN_NAMES.sub("_", name).split()).strip(" .")
    if len(name) > MAX_NAME_LENGTH:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 10:
            name = f"{stem[: MAX_NAME_LENGTH - len(extension) - 1].rstrip(' .')}.{extension}"
        else:
            name = name[:MAX_NAME_LENGTH]
    return name


def sniff(data: bytes) -> str | None:
    """The kind of file ``data`` holds (a key of ``_KIND_LABELS``), or None when it is none of them."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _zip_kind(data)
    if b"\x00" not in data:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return "text"
    return None


def _zip_kind(data: bytes) -> str | None:
    """``docx``/``xlsx``/``pptx`` for Office Open XML files, ``zip`` for other archives, None
    for a corrupt one. Reads only the archive's directory, never decompresses."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        return None
    if "[Content_Types].xml" in names:
        for folder, kind in _OOXML_FOLDERS:
            if any(name.startswith(folder) for name in names):
                return kind
    return "zip"


def _check(data: bytes, filename: str, field: str, max_bytes: int) -> CheckedFile:
    if len(data) > max_bytes:
        message = f"“{clean_filename(filename) or 'The file'}” is larger than {format_bytes(max_bytes)}."
        raise FileTooLarge(
            detail=f"{message} Attach a smaller file.",
            extra={"errors": [{"field": field, "source": "body", "message": message}]},
        )
    if not data:
        raise field_error(field, f"“{clean_filename(filename) or 'The file'}” is empty.")
    name = clean_filename(filename)
    stem, dot, extension = name.rpartition(".")
    extension = extension.lower() if dot else ""
    if extension not in CONTENT_TYPES:
        raise field_error(
            field, f"“{name or 'This file'}” is not a type you can attach. Attach {ALLOWED_TEXT} files."
        )
    expected = _KIND_OF_EXTENSION.get(extension, extension)
    found = sniff(data)
    matches = found == expected or (extension == "zip" and found in _ZIP_KINDS)
    if not matches:
        holds = f"holds {_KIND_LABELS[found]}" if found else "is not a file of any type you can attach"
        raise field_error(
            field,
            f"“{name}” is named .{extension} but {holds}. Check the file, or give it the right extension.",
        )
    if not stem.strip(" ."):
        name = f"attachment.{extension}"
    return CheckedFile(filename=name, extension=extension, content_type=CONTENT_TYPES[extension], data=data)


async def check_file(data: bytes, filename: str, *, field: str, max_bytes: int) -> CheckedFile:
    """Check an uploaded document. Raises :class:`FileTooLarge` (413) above ``max_bytes``, and a
    400 naming ``field`` for an empty file, an extension not in :data:`CONTENT_TYPES`, or content
    that is not what the extension says. The sniffing runs in a worker thread."""
    return await asyncio.to_thread(_check, data, filename, field, max_bytes)


async def store_file(storage: Storage, checked: CheckedFile, *, folder: str) -> StoredFile:
    """Save ``checked`` under ``<folder>/<random>.<extension>``."""
    extension = "jpg" if checked.extension == "jpeg" else checked.extension
    key = f"{folder}/{secrets.token_hex(16)}.{extension}"
    await storage.save(key, checked.data, content_type=checked.content_type)
    return StoredFile(
        key=key, filename=checked.filename, content_type=checked.content_type, size=checked.size
    )


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact name in RFC 5987 ``filename*``."""
    fallback = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
    fallback = re.sub(r"[^A-Za-z0-9._ ()\[\]-]", "_", fallback).strip() or "attachment"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"

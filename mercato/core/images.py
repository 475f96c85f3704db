"""Uploaded images, made safe: decoded, checked, cleaned and re-encoded as WebP.

Uploads are untrusted. Only JPEG, PNG, GIF and WebP are decoded; the pixel count is checked
from the header before any pixels are allocated (decompression bombs); EXIF orientation is
applied and then every piece of metadata (EXIF with its GPS position, XMP, comments, colour
profiles after conversion to sRGB) is dropped; animations keep their first frame. What is
stored is always a freshly encoded WebP, never the bytes that were sent.
"""

from __future__ import annotations

import asyncio
import io
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from litestar.exceptions import HTTPException
from PIL import Image, ImageOps

if TYPE_CHECKING:
    from mercato.core.settings import UploadsSettings
    from mercato.core.storage import Storage

ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP")
"""The Pillow decoders an upload may use; everything else (SVG, BMP, TIFF, PSD…) is refused."""
WEBP_QUALITY = 85
WEBP_METHOD = 4
WEBP_MAX_SIDE = 16383
"""The largest width or height a WebP file can have."""

INVALID_IMAGE = "This file is not a valid image (JPEG, PNG, GIF or WebP)."
_FOLDER = re.compile(r"[a-z0-9_-]{1,100}")
_SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})


class UploadTooLarge(HTTPException):
    """The upload is bigger than ``[uploads] max_image_bytes`` (413)."""

    status_code = 413


class InvalidUpload(HTTPException):
    """The upload is empty, not an accepted image, or too many pixels (400)."""

    status_code = 400


@dataclass(frozen=True, slots=True)
class ProcessedImage:
    """A cleaned, re-encoded image ready to store."""

    data: bytes
    width: int
    height: int
    content_type: str = "image/webp"
    extension: str = "webp"


@dataclass(frozen=True, slots=True)
class StoredImage:
    """Where :func:`store_image` put an image, and its final size."""

    key: str
    url: str
    width: int
    height: int


def format_bytes(size: int) -> str:
    """``5242880`` → ``"5 MB"``, ``1536`` → ``"1.5 KB"`` (binary units, as the limits are)."""
    for unit, factor in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= factor:
            return f"{round(size / factor, 1):g} {unit}"
    return f"{size} bytes"


def _too_many_pixels(max_pixels: int, size: tuple[int, int] | None = None) -> InvalidUpload:
    if max_pixels >= 1_000_000:
        limit = f"the limit is {round(max_pixels / 1_000_000, 1):g} megapixels"
    else:
        limit = f"the limit is {max_pixels:,} pixels"
    found = f"{size[0]} x {size[1]}; " if size else ""
    return InvalidUpload(f"The image is too large in pixels ({found}{limit}).")


async def process_image(
    data: bytes, *, settings: UploadsSettings, max_side: int | None = None
) -> ProcessedImage:
    """Check and re-encode an uploaded image as WebP, at most ``max_side`` pixels a side.

    ``max_side`` defaults to ``settings.max_image_side``; smaller images are not enlarged.
    Raises :class:`UploadTooLarge` (413) above ``settings.max_image_bytes``, and
    :class:`InvalidUpload` (400) for an empty file, a file that is not a JPEG, PNG, GIF or
    WebP image (or is truncated or corrupt), or one above ``settings.max_image_pixels``.
    The decoding runs in a worker thread.
    """
    if len(data) > settings.max_image_bytes:
        raise UploadTooLarge(
            f"The image is larger than {format_bytes(settings.max_image_bytes)}. Upload a smaller file."
        )
    if not data:
        raise InvalidUpload("The file is empty.")
    side = settings.max_image_side if max_side is None else max_side
    if side < 1:
        raise ValueError(f"max_side must be positive, not {side}")
    return await asyncio.to_thread(_process, data, settings.max_image_pixels, min(side, WEBP_MAX_SIDE))


async def store_image(
    storage: Storage, data: bytes, *, folder: str, settings: UploadsSettings, max_side: int | None = None
) -> StoredImage:
    """:func:`process_image` ``data`` and save the result under ``<folder>/<random>.webp``.

    ``folder`` is a short name such as ``avatars`` (``a-z``, ``0-9``, ``_``, ``-``). Raises
    what :func:`process_image` raises; nothing is stored then.
    """
    if not _FOLDER.fullmatch(folder):
        raise ValueError(f"invalid storage folder {folder!r}: use a-z, 0-9, `_` and `-`")
    image = await process_image(data, settings=settings, max_side=max_side)
    key = f"{folder}/{secrets.token_hex(16)}.{image.extension}"
    await storage.save(key, image.data, content_type=image.content_type)
    return StoredImage(key=key, url=storage.url(key), width=image.width, height=image.height)


def _process(data: bytes, max_pixels: int, max_side: int) -> ProcessedImage:
    """The blocking part of :func:`process_image`."""
    try:
        # Opening reads only the header: the size is known, no pixels are allocated yet.
        img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own (process-wide, larger) limit. The warning is an exception only where the
        # warning filters say so; it is not switched on here since filters are not thread-safe.
        # ``max_pixels`` below is the limit that counts.
        raise _too_many_pixels(max_pixels) from None
    except MemoryError:
        raise
    except Exception:  # Pillow raises many kinds of errors for hostile input
        raise InvalidUpload(INVALID_IMAGE) from None
    with img:
        width, height = img.size
        if width < 1 or height < 1:
            raise InvalidUpload(INVALID_IMAGE)
        if width * height > max_pixels:
            raise _too_many_pixels(max_pixels, (width, height))
        try:
            if img.format == "JPEG":  # decode big photos at a reduced scale (DCT scaling)
                img.draft(None, (2 * max_side, 2 * max_side))
            img.load()  # the first frame only
            clean = _normalise(img)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_many_pixels(max_pixels, (width, height)) from None
        except MemoryError:
            raise
        except Exception:  # truncated or corrupt data
            raise InvalidUpload(INVALID_IMAGE) from None
    clean.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    clean.info.clear()  # nothing of the original's metadata reaches the encoder
    out = io.BytesIO()
    clean.save(out, format="WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
    return ProcessedImage(data=out.getvalue(), width=clean.width, height=clean.height)


def _normalise(img: Image.Image) -> Image.Image:
    """An upright RGB or RGBA copy of ``img``'s current frame, in sRGB."""
    icc_profile = img.info.get("icc_profile")
    try:
        upright = ImageOps.exif_transpose(img)
    except Exception:  # unreadable EXIF: keep the pixels as they are
        upright = img.copy()
    if upright.mode in _SIXTEEN_BIT_MODES:  # 16-bit greyscale: scale down rather than clip
        upright = upright.convert("I").point(lambda value: value / 256).convert("L")
    if icc_profile and upright.mode in ("RGB", "RGBA", "CMYK"):
        upright = _to_srgb(upright, icc_profile)
    return upright.convert("RGBA" if upright.has_transparency_data else "RGB")


def _to_srgb(img: Image.Image, icc_profile: bytes) -> Image.Image:
    """Convert pixels from their embedded colour profile to sRGB (unchanged if that fails)."""
    try:
        from PIL import ImageCms
    except ImportError:  # Pillow built without LittleCMS
        return img
    try:
        converted = ImageCms.profileToProfile(
            img, ImageCms.ImageCmsProfile(io.BytesIO(icc_profile)), ImageCms.createProfile("sRGB"),
            outputMode="RGBA" if img.mode == "RGBA" else "RGB",
        )
    except Exception:  # a broken or unusual profile: better the raw pixels than no image
        return img
    return converted if converted is not None else img

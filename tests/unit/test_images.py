"""Uploaded images: only real JPEG/PNG/GIF/WebP pass, cleaned and re-encoded as WebP."""

from __future__ import annotations

import io
import random
import re
import struct
import zlib
from typing import Any

import pytest
from litestar.exceptions import HTTPException
from PIL import ExifTags, Image, ImageCms, ImageFile, PngImagePlugin

from mercato.core.images import (
    INVALID_IMAGE,
    InvalidUpload,
    UploadTooLarge,
    format_bytes,
    process_image,
    store_image,
)
from mercato.core.settings import UploadsSettings

SETTINGS = UploadsSettings()
RED, BLUE = (255, 0, 0), (0, 0, 255)


def encode(img: Image.Image, fmt: str, **params: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    assert img.format == "WEBP"
    img.load()
    return img


def gradient(width: int = 64, height: int = 48, mode: str = "RGB") -> Image.Image:
    vertical = Image.linear_gradient("L").resize((width, height))
    horizontal = Image.linear_gradient("L").rotate(90).resize((width, height))
    return Image.merge("RGB", [horizontal, vertical, Image.new("L", (width, height), 128)]).convert(mode)


def noise_png(width: int = 200, height: int = 200) -> bytes:
    """A PNG whose pixel data does not compress away (so truncating it cuts real pixels)."""
    pixels = random.Random(7).randbytes(width * height * 3)
    return encode(Image.frombytes("RGB", (width, height), pixels), "PNG")


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG that *declares* ``width`` x ``height`` 1-bit pixels (a decompression bomb's header)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def near(pixel: Any, colour: tuple[int, ...], tolerance: int = 60) -> bool:
    """``pixel`` is within ``tolerance`` of ``colour`` on every channel (lossy encoding)."""
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=False))


async def rejected(data: bytes, settings: UploadsSettings = SETTINGS, **kwargs: Any) -> HTTPException:
    with pytest.raises(HTTPException) as caught:
        await process_image(data, settings=settings, **kwargs)
    return caught.value


# ---------------------------------------------------------------------------
# Accepted formats
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
async def test_accepted_formats_are_re_encoded_as_webp(fmt: str) -> None:
    original = encode(gradient(), fmt)
    result = await process_image(original, settings=SETTINGS)
    assert result.content_type == "image/webp"
    assert result.extension == "webp"
    assert result.data != original
    assert result.data[:4] == b"RIFF"
    assert result.data[8:12] == b"WEBP"
    out = decode(result.data)
    assert out.size == (result.width, result.height) == (64, 48)
    assert out.mode == "RGB"


async def test_transparency_is_kept() -> None:
    img = Image.new("RGBA", (32, 32), (*RED, 255))
    img.paste((0, 0, 0, 0), (0, 0, 16, 32))
    out = decode((await process_image(encode(img, "PNG"), settings=SETTINGS)).data)
    assert out.mode == "RGBA"
    assert out.getchannel("A").getpixel((4, 4)) == 0
    assert out.getchannel("A").getpixel((28, 4)) == 255


async def test_palette_gif_with_transparency_becomes_rgba() -> None:
    img = Image.new("P", (16, 16), 1)
    img.putpalette([0, 0, 0, *RED] + [0] * 762)
    img.paste(0, (0, 0, 8, 16))
    out = decode((await process_image(encode(img, "GIF", transparency=0), settings=SETTINGS)).data)
    assert out.mode == "RGBA"
    assert out.getchannel("A").getpixel((2, 2)) == 0


async def test_only_the_first_frame_of_an_animation_is_kept() -> None:
    frames = [Image.new("RGB", (20, 20), colour) for colour in (RED, BLUE, (0, 255, 0))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    out = decode((await process_image(data, settings=SETTINGS)).data)
    assert not getattr(out, "is_animated", False)
    assert getattr(out, "n_frames", 1) == 1
    assert near(out.convert("RGB").getpixel((10, 10)), RED)


async def test_animated_webp_keeps_its_first_frame() -> None:
    frames = [Image.new("RGB", (20, 20), colour) for colour in (BLUE, RED)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)
    out = decode((await process_image(data, settings=SETTINGS)).data)
    assert getattr(out, "n_frames", 1) == 1
    assert near(out.convert("RGB").getpixel((10, 10)), BLUE)


async def test_sixteen_bit_greyscale_is_scaled_not_clipped() -> None:
    img = Image.new("I;16", (8, 8), 32768)
    out = decode((await process_image(encode(img, "PNG"), settings=SETTINGS)).data)
    value = out.convert("L").getpixel((4, 4))
    assert isinstance(value, int)
    assert 110 < value < 145


async def test_cmyk_jpeg_becomes_rgb() -> None:
    data = encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG")
    out = decode((await process_image(data, settings=SETTINGS)).data)
    assert out.mode == "RGB"
    assert near(out.getpixel((8, 8)), RED)


# ---------------------------------------------------------------------------
# Metadata and orientation
# ---------------------------------------------------------------------------


def jpeg_with_metadata(img: Image.Image, orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyCam"
    exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 12.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (13.0, 24.0, 36.0)
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>SecretXmpMarker</rdf:RDF></x:xmpmeta>'
    return encode(img, "JPEG", exif=exif, xmp=xmp, comment=b"SecretCommentMarker",
                  icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


async def test_exif_gps_xmp_comments_and_profiles_are_removed() -> None:
    data = jpeg_with_metadata(gradient())
    source = Image.open(io.BytesIO(data))
    assert source.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the test image really has a position
    for marker in (b"SecretXmpMarker", b"SecretCommentMarker", b"SpyCam"):
        assert marker in data

    result = await process_image(data, settings=SETTINGS)
    out = decode(result.data)
    assert not out.getexif()
    assert not {"exif", "xmp", "icc_profile", "comment"} & out.info.keys()
    for marker in (b"EXIF", b"XMP ", b"ICCP", b"SpyCam", b"SecretXmpMarker", b"SecretCommentMarker"):
        assert marker not in result.data


async def test_png_text_chunks_are_removed() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "SecretAuthorMarker")
    info.add_itxt("Comment", "SecretItxtMarker", zip=True)
    data = encode(gradient(), "PNG", pnginfo=info)
    result = await process_image(data, settings=SETTINGS)
    assert b"SecretAuthorMarker" not in result.data
    assert decode(result.data).info.keys() <= {"loop", "background", "timestamp", "duration"}


async def test_exif_orientation_is_applied() -> None:
    img = Image.new("RGB", (40, 20), RED)
    img.paste(BLUE, (20, 0, 40, 20))
    data = jpeg_with_metadata(img, orientation=6)  # "rotate 90° clockwise to display"
    result = await process_image(data, settings=SETTINGS)
    out = decode(result.data)
    assert (result.width, result.height) == out.size == (20, 40)
    assert near(out.getpixel((10, 5)), RED)  # the stored left edge is now the top
    assert near(out.getpixel((10, 35)), BLUE)


# ---------------------------------------------------------------------------
# Size limits and thumbnails
# ---------------------------------------------------------------------------


async def test_thumbnail_respects_max_side() -> None:
    data = encode(Image.new("RGB", (3000, 1000), RED), "PNG")
    small = await process_image(data, settings=SETTINGS, max_side=300)
    assert (small.width, small.height) == decode(small.data).size == (300, 100)
    default = await process_image(data, settings=SETTINGS)
    assert (default.width, default.height) == (2048, 683)
    configured = await process_image(data, settings=UploadsSettings(max_image_side=100))
    assert (configured.width, configured.height) == (100, 33)


async def test_large_jpeg_is_scaled_down_keeping_its_aspect() -> None:
    data = encode(gradient(1600, 1200), "JPEG")
    result = await process_image(data, settings=SETTINGS, max_side=128)
    assert (result.width, result.height) == decode(result.data).size == (128, 96)


async def test_small_images_are_not_enlarged() -> None:
    result = await process_image(encode(gradient(50, 30), "PNG"), settings=SETTINGS, max_side=400)
    assert (result.width, result.height) == (50, 30)


async def test_too_many_bytes_is_413_naming_the_limit() -> None:
    error = await rejected(b"\0" * (SETTINGS.max_image_bytes + 1))
    assert isinstance(error, UploadTooLarge)
    assert error.status_code == 413
    assert error.detail == "The image is larger than 5 MB. Upload a smaller file."

    error = await rejected(noise_png(), UploadsSettings(max_image_bytes=1536))
    assert error.status_code == 413
    assert error.detail == "The image is larger than 1.5 KB. Upload a smaller file."


def test_format_bytes() -> None:
    assert format_bytes(5 * 1024 * 1024) == "5 MB"
    assert format_bytes(10 * 1024 * 1024 + 300 * 1024) == "10.3 MB"
    assert format_bytes(2048) == "2 KB"
    assert format_bytes(100) == "100 bytes"


async def test_the_byte_limit_is_checked_before_anything_else() -> None:
    assert (await rejected(b"not an image" * 200, UploadsSettings(max_image_bytes=1024))).status_code == 413


async def test_empty_file_is_400() -> None:
    error = await rejected(b"")
    assert isinstance(error, InvalidUpload)
    assert error.status_code == 400
    assert error.detail == "The file is empty."


@pytest.fixture
def load_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Records every attempt to decode pixels."""
    calls: list[tuple[int, int]] = []
    original = ImageFile.ImageFile.load

    def spy(self: ImageFile.ImageFile) -> Any:
        calls.append(self.size)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    return calls


@pytest.mark.parametrize(("width", "height"), [(30000, 30000), (6000, 6000), (100_000, 300)])
async def test_decompression_bombs_are_refused_before_decoding(
    width: int, height: int, load_calls: list[tuple[int, int]]
) -> None:
    data = png_header(width, height)
    assert len(data) < 200
    error = await rejected(data)
    assert error.status_code == 400
    assert error.detail.startswith("The image is too large in pixels (")
    assert "the limit is 25 megapixels" in error.detail
    assert load_calls == []


async def test_our_pixel_limit_names_the_size(load_calls: list[tuple[int, int]]) -> None:
    error = await rejected(png_header(6000, 6000))
    assert error.detail == "The image is too large in pixels (6000 x 6000; the limit is 25 megapixels)."
    small_limit = UploadsSettings(max_image_pixels=10_000)
    error = await rejected(encode(gradient(101, 100), "PNG"), small_limit)
    assert error.detail == "The image is too large in pixels (101 x 100; the limit is 10,000 pixels)."
    assert load_calls == []
    assert (await process_image(encode(gradient(100, 100), "PNG"), settings=small_limit)).width == 100


# ---------------------------------------------------------------------------
# Things that are not (acceptable) images
# ---------------------------------------------------------------------------

SVG = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
       b'<script>alert(1)</script><rect width="10" height="10"/></svg>')


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(noise_png()[: len(noise_png()) // 2], id="truncated-png"),
        pytest.param(noise_png()[:40], id="png-cut-in-the-header"),
        pytest.param(encode(gradient(), "JPEG")[:300], id="truncated-jpeg"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + b"<html><script>alert(1)</script></html>" * 20,
                     id="png-magic-garbage"),
        pytest.param(b"GIF89a" + bytes(range(256)) * 4, id="gif-magic-garbage"),
        pytest.param(b"hello, this is a text file\n" * 10, id="text"),
        pytest.param(SVG, id="svg"),
        pytest.param(encode(gradient(), "BMP"), id="bmp"),
        pytest.param(encode(gradient(), "TIFF"), id="tiff"),
        pytest.param(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n", id="pdf"),
        pytest.param(png_header(0, 10), id="zero-width"),
    ],
)
async def test_non_images_are_400(data: bytes) -> None:
    error = await rejected(data)
    assert isinstance(error, InvalidUpload)
    assert error.status_code == 400
    assert error.detail == INVALID_IMAGE


async def test_a_png_polyglot_is_cleaned_of_its_payload() -> None:
    payload = b"<html><script>alert(document.cookie)</script></html>"
    result = await process_image(encode(gradient(), "PNG") + payload, settings=SETTINGS)
    assert payload not in result.data
    assert b"<script" not in result.data
    assert decode(result.data).size == (64, 48)


# ---------------------------------------------------------------------------
# store_image
# ---------------------------------------------------------------------------


class MemoryStorage:
    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}

    async def save(self, key: str, data: bytes, *, content_type: str) -> None:
        self.files[key] = (data, content_type)

    async def load(self, key: str) -> bytes:
        return self.files[key][0]

    async def delete(self, key: str) -> None:
        self.files.pop(key, None)

    def url(self, key: str) -> str:
        return f"/files/{key}"


async def test_store_image_saves_the_webp_under_a_fresh_random_key() -> None:
    storage = MemoryStorage()
    data = encode(gradient(300, 200), "JPEG")
    first = await store_image(storage, data, folder="avatars", settings=SETTINGS, max_side=150)
    second = await store_image(storage, data, folder="avatars", settings=SETTINGS, max_side=150)
    assert re.fullmatch(r"avatars/[0-9a-f]{32}\.webp", first.key)
    assert first.key != second.key
    assert first.url == f"/files/{first.key}"
    assert (first.width, first.height) == (150, 100)
    stored, content_type = storage.files[first.key]
    assert content_type == "image/webp"
    assert decode(stored).size == (150, 100)
    assert data not in stored


async def test_store_image_stores_nothing_when_the_image_is_refused() -> None:
    storage = MemoryStorage()
    with pytest.raises(InvalidUpload):
        await store_image(storage, b"nope", folder="avatars", settings=SETTINGS)
    assert storage.files == {}


@pytest.mark.parametrize("folder", ["", "../x", "a/b", "Avatars", "a.b"])
async def test_store_image_refuses_odd_folders(folder: str) -> None:
    with pytest.raises(ValueError, match="folder"):
        await store_image(MemoryStorage(), encode(gradient(), "PNG"), folder=folder, settings=SETTINGS)

"""The built-in ``local_storage`` plugin: files under ``<data_dir>/uploads``, served at ``/media``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from mercato import create_app, hookimpl
from mercato.core.plugins import PluginError, build_plugin_manager
from mercato.core.settings import Settings
from mercato.core.site import Site
from mercato.core.storage import Storage, StorageError
from mercato.plugins.local_storage import LocalStorage
from tests.conftest import MakeSettings, SiteFactory, _delete_streams

WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8 fake image bytes"
MEDIA_HEADERS = {
    "x-content-type-options": "nosniff",
    "cache-control": "public, max-age=31536000, immutable",
    "content-security-policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox",
}
BAD_KEYS = [
    "", "../secret_key", "avatars/../../secret_key", "avatars/../x.webp", "/etc/passwd",
    "/avatars/x.webp", "avatars/x", "x.webp", "a/b/c.webp", "Avatars/x.webp", "avatars/X.webp",
    "avatars/.x.webp", "avatars/x..webp", "avatars/x.webp/", "avatars/x.webp\n", "avatars\\x.webp",
    "avatars/x.we/bp", "avatars/x.web p", "avatars/x.webp\x00.png", "%2e%2e/x.webp", "avatars//x.webp",
    "avatars/" + "x" * 101 + ".webp",
]


# ---------------------------------------------------------------------------
# The storage object
# ---------------------------------------------------------------------------


@pytest.fixture
async def site(sites: SiteFactory, make_settings: MakeSettings) -> Site:
    return await sites.start(make_settings(), background=False)


async def test_the_builtin_storage_is_local_and_made_once_per_site(site: Site) -> None:
    storage = site.plugins.storage(site)
    assert isinstance(storage, LocalStorage)
    assert isinstance(storage, Storage)
    assert storage.root == site.settings.data_path / "uploads"
    assert site.plugins.storage(site) is storage


async def test_save_load_url_delete(site: Site) -> None:
    storage = site.plugins.storage(site)
    key = "avatars/0123abcd_ef-9.webp"
    await storage.save(key, WEBP, content_type="image/webp")

    path = site.settings.data_path / "uploads" / "avatars" / "0123abcd_ef-9.webp"
    assert path.read_bytes() == WEBP
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    assert await storage.load(key) == WEBP
    assert storage.url(key) == "/media/avatars/0123abcd_ef-9.webp"

    await storage.delete(key)
    assert not path.exists()
    await storage.delete(key)  # deleting twice is fine
    with pytest.raises(FileNotFoundError):
        await storage.load(key)


async def test_a_second_save_replaces_the_file_whole(site: Site) -> None:
    storage = site.plugins.storage(site)
    await storage.save("docs/a.txt", b"first version, rather long", content_type="text/plain")
    await storage.save("docs/a.txt", b"second", content_type="text/plain")
    assert await storage.load("docs/a.txt") == b"second"


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_keys_that_could_escape_the_folder_are_refused(site: Site, key: str) -> None:
    storage = site.plugins.storage(site)
    site.settings.secret_key()  # make sure there is something worth stealing next door
    with pytest.raises(StorageError):
        await storage.save(key, b"evil", content_type="text/plain")
    with pytest.raises(StorageError):
        await storage.load(key)
    with pytest.raises(StorageError):
        await storage.delete(key)
    with pytest.raises(StorageError):
        storage.url(key)
    assert (site.settings.data_path / "secret_key").read_text() != "evil"
    assert not (site.settings.data_path / "uploads").exists()


class MemoryStorage:
    async def save(self, key: str, data: bytes, *, content_type: str) -> None: ...

    async def load(self, key: str) -> bytes:
        raise FileNotFoundError(key)

    async def delete(self, key: str) -> None: ...

    def url(self, key: str) -> str:
        return f"https://cdn.example/{key}"


class CdnPlugin:
    storage = MemoryStorage()

    @hookimpl
    def get_storage(self, site: Site) -> MemoryStorage:
        return self.storage


async def test_another_plugins_storage_wins(make_settings: MakeSettings) -> None:
    settings = make_settings()
    site = Site(settings, pm=build_plugin_manager(settings, extra=[("cdn", CdnPlugin())]))
    try:
        assert site.plugins.storage(site) is CdnPlugin.storage
    finally:
        await site.db.dispose()


async def test_without_local_storage_and_no_other_storage_is_an_error(make_settings: MakeSettings) -> None:
    site = Site(make_settings(plugins={"disabled": ["local_storage"]}))
    try:
        with pytest.raises(PluginError, match="local_storage"):
            site.plugins.storage(site)
    finally:
        await site.db.dispose()


# ---------------------------------------------------------------------------
# GET /media/<key>
# ---------------------------------------------------------------------------


@pytest.fixture
async def app_site(migrated_settings: Settings) -> AsyncIterator[tuple[Any, Site]]:
    site = Site(migrated_settings)
    async with AsyncTestClient(create_app(site=site)) as client:
        yield client, site
    await _delete_streams(migrated_settings.events.nats_url, {migrated_settings.events.stream})


@pytest.mark.parametrize(
    ("key", "content_type"),
    [
        ("avatars/abc.webp", "image/webp"),
        ("images/abc.png", "image/png"),
        ("images/abc.jpg", "image/jpeg"),
        ("images/abc.jpeg", "image/jpeg"),
        ("images/abc.gif", "image/gif"),
        ("files/abc.pdf", "application/pdf"),
        ("files/abc.txt", "text/plain; charset=utf-8"),
    ],
)
async def test_media_serves_the_file_with_safe_headers(
    app_site: tuple[Any, Site], key: str, content_type: str
) -> None:
    client, site = app_site
    storage = site.plugins.storage(site)
    await storage.save(key, WEBP, content_type=content_type)
    response = await client.get(storage.url(key))
    assert response.status_code == 200
    assert response.content == WEBP
    assert response.headers["content-type"] == content_type
    assert response.headers["content-disposition"].startswith("inline")
    for name, value in MEDIA_HEADERS.items():
        assert response.headers[name] == value


@pytest.mark.parametrize("key", ["files/report.bin", "files/page.html", "files/image.svg", "files/x.js"])
async def test_other_types_are_downloads_never_rendered(app_site: tuple[Any, Site], key: str) -> None:
    client, site = app_site
    storage = site.plugins.storage(site)
    await storage.save(key, b"<html><script>alert(1)</script></html>", content_type="text/html")
    response = await client.get(f"/media/{key}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith("attachment")
    for name, value in MEDIA_HEADERS.items():
        assert response.headers[name] == value


@pytest.mark.parametrize(
    "path",
    [
        "/media/avatars/missing.webp",
        "/media/..%2F..%2Fsecret_key",
        "/media/..%2Fsecret_key",
        "/media/%2e%2e/%2e%2e/secret_key",
        "/media/avatars%2F..%2F..%2Fsecret_key",
        "/media/avatars/..%2F..%2Fsecret_key",
        "/media/avatars",
        "/media/avatars/",
        "/media/",
        "/media/avatars/dir.webp",
        "/media/avatars/.hidden.webp.tmp",
        "/media/AVATARS/ABC.WEBP",
    ],
)
async def test_missing_and_invalid_keys_are_404(app_site: tuple[Any, Site], path: str) -> None:
    client, site = app_site
    secret = site.settings.secret_key()
    uploads = site.settings.data_path / "uploads"
    await site.plugins.storage(site).save("avatars/abc.webp", WEBP, content_type="image/webp")
    (uploads / "avatars" / "dir.webp").mkdir()
    (uploads / "avatars" / ".hidden.webp.tmp").write_bytes(b"half written")
    response = await client.get(path)
    assert response.status_code == 404
    assert secret not in response.text
    assert "half written" not in response.text

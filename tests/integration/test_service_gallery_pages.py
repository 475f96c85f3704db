"""A service's gallery in the theme, driven like a browser without JavaScript: the owner adds
images on the edit page (checked and re-encoded like the API's uploads) and removes them, the
service page shows them, mistakes show next to the upload field, and nobody else may touch it."""

from __future__ import annotations

import re

import httpx

from mercato.core.listings import schemas
from tests.integration.test_account_pages import Browser, Pages, png
from tests.integration.test_project_pages import open_site, pages, person, text_of
from tests.integration.test_service_pages import offer

__all__ = ["open_site", "pages"]

GALLERY_IMAGE = re.compile(r'src="(/media/services/[0-9a-f]+\.webp)"')
ADDED = "/edit?done=image-added#gallery"


def images_on(page: httpx.Response) -> list[str]:
    """The gallery images a page shows, in order (each once)."""
    return list(dict.fromkeys(GALLERY_IMAGE.findall(page.text)))


async def add_image(browser: Browser, service_id: str, data: bytes | None = None) -> httpx.Response:
    return await browser.post(
        f"/services/{service_id}/gallery", files={"image": ("work.png", data or png(), "image/png")}
    )


async def test_the_owner_adds_an_image_and_removes_it(pages: Pages) -> None:
    developer, _ = await person(pages, "grace@example.com", "Grace Hopper", "developer")
    service_id = await offer(developer)

    form = await developer.get(f"/services/{service_id}/edit")
    assert form.status_code == 200
    assert f'action="/services/{service_id}/gallery"' in form.text
    assert 'enctype="multipart/form-data"' in form.text
    assert 'accept="image/jpeg,image/png,image/gif,image/webp"' in form.text
    assert "No images yet." in text_of(form)
    assert f"{schemas.MAX_GALLERY} more images fit" in text_of(form)

    added = await add_image(developer, service_id)
    assert added.status_code == 303, added.text
    assert added.headers["location"] == f"/services/{service_id}{ADDED}"
    edit = await developer.get(added.headers["location"])
    assert "Image added." in text_of(edit)
    [url] = images_on(edit)
    assert f"{schemas.MAX_GALLERY - 1} more images fit" in text_of(edit)
    assert f'action="/services/{service_id}/gallery/delete"' in edit.text
    served = await pages.browser().get(url)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/webp"

    assert images_on(await developer.get(f"/services/{service_id}")) == [url]
    assert images_on(await pages.browser().get(f"/services/{service_id}")) == [url]
    api = (await developer.get(f"/api/v1/services/{service_id}")).json()
    key = api["gallery"][0]["key"]
    assert url.endswith(key)
    assert f'name="key" value="{key}"' in edit.text

    removed = await developer.post(f"/services/{service_id}/gallery/delete", {"key": key})
    assert removed.status_code == 303, removed.text
    assert removed.headers["location"] == f"/services/{service_id}/edit?done=image-removed#gallery"
    edit = await developer.get(removed.headers["location"])
    assert "Image removed." in text_of(edit)
    assert images_on(edit) == []
    assert images_on(await developer.get(f"/services/{service_id}")) == []
    assert (await pages.browser().get(url)).status_code == 404, "the file is deleted"

    again = await developer.post(f"/services/{service_id}/gallery/delete", {"key": key})
    assert again.status_code == 303
    assert again.headers["location"] == f"/services/{service_id}/edit#gallery"


async def test_a_file_that_is_not_an_image_shows_next_to_the_field(pages: Pages) -> None:
    developer, _ = await person(pages, "grace@example.com", "Grace Hopper", "developer")
    service_id = await offer(developer)

    bad = await add_image(developer, service_id, b"GIF89a nonsense")
    assert bad.status_code == 400
    assert 'id="gallery-image-error"' in bad.text
    assert "not a valid image" in text_of(bad)
    # The rest of the edit page is still there, filled with the saved service.
    assert f'action="/services/{service_id}/edit"' in bad.text
    assert 'value="Stripe checkout for your Django shop"' in bad.text

    nothing = await developer.post(
        f"/services/{service_id}/gallery", files={"image": ("", b"", "application/octet-stream")}
    )
    assert nothing.status_code == 400
    assert "Choose an image to upload." in text_of(nothing)

    too_large = await add_image(
        developer, service_id, b"\0" * (pages.site.settings.uploads.max_image_bytes + 1)
    )
    assert too_large.status_code == 413
    assert 'id="gallery-image-error"' in too_large.text
    assert "Upload a smaller file." in text_of(too_large)

    assert (await developer.get(f"/api/v1/services/{service_id}")).json()["gallery"] == []


async def test_a_full_gallery_refuses_one_more(pages: Pages) -> None:
    developer, _ = await person(pages, "grace@example.com", "Grace Hopper", "developer")
    service_id = await offer(developer)
    for shade in range(schemas.MAX_GALLERY):
        added = await add_image(developer, service_id, png((shade * 20, 60, 90)))
        assert added.status_code == 303, added.text

    edit = await developer.get(f"/services/{service_id}/edit")
    assert len(images_on(edit)) == schemas.MAX_GALLERY
    assert "The gallery is full" in text_of(edit)
    assert f'action="/services/{service_id}/gallery"' not in edit.text

    full = await add_image(developer, service_id)
    assert full.status_code == 400
    assert 'id="gallery-image-error"' in full.text
    assert f"A service shows at most {schemas.MAX_GALLERY} images; remove one first." in text_of(full)
    assert f'action="/services/{service_id}/edit"' in full.text
    assert len(images_on(full)) == schemas.MAX_GALLERY


async def test_only_the_owner_may_change_the_gallery(pages: Pages) -> None:
    developer, _ = await person(pages, "grace@example.com", "Grace Hopper", "developer")
    rival, _ = await person(pages, "linus@example.com", "Linus Torvalds", "developer")
    service_id = await offer(developer)
    assert (await add_image(developer, service_id)).status_code == 303
    key = (await developer.get(f"/api/v1/services/{service_id}")).json()["gallery"][0]["key"]

    refused = await add_image(rival, service_id)
    assert refused.status_code == 404
    assert "Gallery" not in text_of(refused)
    removed = await rival.post(f"/services/{service_id}/gallery/delete", {"key": key})
    assert removed.status_code == 404

    anonymous = pages.browser()
    added = await add_image(anonymous, service_id)
    assert added.status_code == 303
    assert added.headers["location"] == f"/login?next=%2Fservices%2F{service_id}%2Fedit"
    removed = await anonymous.post(f"/services/{service_id}/gallery/delete", {"key": key})
    assert removed.status_code == 303
    assert removed.headers["location"].startswith("/login?next=")

    gallery = (await developer.get(f"/api/v1/services/{service_id}")).json()["gallery"]
    assert [image["key"] for image in gallery] == [key]


async def test_an_archived_service_takes_no_images(pages: Pages) -> None:
    developer, _ = await person(pages, "grace@example.com", "Grace Hopper", "developer")
    service_id = await offer(developer)
    assert (await add_image(developer, service_id)).status_code == 303
    key = (await developer.get(f"/api/v1/services/{service_id}")).json()["gallery"][0]["key"]
    assert (await developer.post(f"/services/{service_id}/archive")).status_code == 303

    added = await add_image(developer, service_id)
    assert added.status_code == 409
    assert "it can no longer be edited" in text_of(added)
    removed = await developer.post(f"/services/{service_id}/gallery/delete", {"key": key})
    assert removed.status_code == 409
    assert "it can no longer be edited" in text_of(removed)

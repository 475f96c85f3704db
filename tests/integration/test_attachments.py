"""Attachments on projects and proposals, over HTTP: upload, list, download and remove; who may
do and see what (a proposal's files only its developer and the project's client); files checked
by their content (empty, too big, spoofed extensions, too many); stored files removed after the
commit; and the theme's forms, which upload through multipart with the CSRF token.

Each test runs a real app on a fresh migrated database (SQLite, or PostgreSQL with
``MERCATO_TEST_DATABASE_URL``).
"""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest

from mercato.core.files import clean_filename, content_disposition, sniff
from mercato.core.projects.attachments import MAX_ATTACHMENTS
from mercato.core.projects.models import Attachment, Project, ProjectStatus
from tests.conftest import Databases, MakeSettings
from tests.integration.test_project_pages import bid_form, person, project_form, proposal_ids
from tests.integration.test_project_pages import open_site as open_site
from tests.marketplace_helpers import (
    API,
    MARKET_ACCOUNTS,
    App,
    Apps,
    Person,
    assert_problem,
    bid,
    client,
    developer,
    open_market,
    post_project,
    set_row,
)

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)


def office(folder: str) -> bytes:
    """A minimal Office Open XML container (``word/``, ``xl/`` or ``ppt/``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(f"{folder}document.xml", "<document/>")
    return buffer.getvalue()


@pytest.fixture
async def apps(make_settings: MakeSettings, databases: Databases) -> AsyncIterator[Apps]:
    factory = Apps(make_settings, databases)
    try:
        yield factory
    finally:
        await factory.close()


@pytest.fixture
async def app(apps: Apps) -> App:
    return await open_market(apps)


def auth(who: Person | None) -> dict[str, str]:
    return who.auth if who else {}


async def upload(
    app: App,
    who: Person | None,
    url: str,
    name: str = "brief.pdf",
    data: bytes = PDF,
    mime: str = "application/pdf",
) -> Any:
    return await app.client.post(url, headers=auth(who), files={"file": (name, data, mime)})


def project_files(project: dict[str, Any]) -> str:
    return f"{API}/projects/{project['id']}/attachments"


def proposal_files(proposal: dict[str, Any]) -> str:
    return f"{API}/proposals/{proposal['id']}/attachments"


async def stored_keys(app: App) -> set[str]:
    import sqlalchemy as sa

    async def read() -> set[str]:
        async with app.site.db.reading() as session:
            return set((await session.execute(sa.select(Attachment.storage_key))).scalars())

    return await app.on_loop(read)


async def exists_in_storage(app: App, key: str) -> bool:
    async def load() -> bool:
        try:
            await app.site.plugins.storage(app.site).load(key)
        except FileNotFoundError:
            return False
        return True

    return await app.on_loop(load)


# ---------------------------------------------------------------------------
# Projects
# ---------------------------------------------------------------------------


async def test_owner_uploads_lists_downloads_and_removes_a_project_file(app: App) -> None:
    owner = await client(app)
    project = await post_project(app, owner)
    uploaded = await upload(app, owner, project_files(project), "Spec \u202efdp.exe v2.pdf")
    assert uploaded.status_code == 201, uploaded.text
    file = uploaded.json()
    assert file["filename"] == "Spec fdp.exe v2.pdf"  # the bidi override is gone
    assert file["content_type"] == "application/pdf"
    assert file["size"] == len(PDF)
    assert file["url"] == f"{project_files(project)}/{file['id']}"

    shown = (await app.client.get(f"{API}/projects/{project['id']}", headers=owner.auth)).json()
    assert [a["id"] for a in shown["attachments"]] == [file["id"]]

    download = await app.client.get(file["url"], headers=owner.auth)
    assert download.status_code == 200
    assert download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-disposition"].startswith("attachment;")
    assert (
        "filename*=UTF-8''" + quote("Spec fdp.exe v2.pdf", safe="") in download.headers["content-disposition"]
    )
    assert "no-store" in download.headers["cache-control"]

    (key,) = await stored_keys(app)
    assert key.startswith("attachments/")
    assert key.endswith(".pdf")
    assert await exists_in_storage(app, key)
    removed = await app.client.delete(file["url"], headers=owner.auth)
    assert removed.status_code == 204
    assert await stored_keys(app) == set()
    assert not await exists_in_storage(app, key)  # deleted after the commit
    assert_problem(await app.client.get(file["url"], headers=owner.auth), 404)
    shown = (await app.client.get(f"{API}/projects/{project['id']}", headers=owner.auth)).json()
    assert shown["attachments"] == []


async def test_project_files_are_never_public_media_links(app: App) -> None:
    owner = await client(app)
    project = await post_project(app, owner)
    file = (await upload(app, owner, project_files(project))).json()
    assert "/media/" not in file["url"]
    (key,) = await stored_keys(app)
    assert await exists_in_storage(app, key)
    for guessed in (key, f"/{key}", f"avatars/../{key}", f"./{key}"):  # even with the key in hand
        assert (await app.client.get(f"/media/{guessed}")).status_code == 404
    listed = (await app.client.get(f"{API}/projects", params={"limit": 5})).json()["items"]
    assert listed[0]["attachments"][0]["url"] == file["url"]


async def test_project_file_permissions(app: App) -> None:
    owner, other_client = await client(app), await client(app, "Other client")
    dev = await developer(app)
    project = await post_project(app, owner)
    file = (await upload(app, owner, project_files(project))).json()

    for who in (owner, other_client, dev, None):  # a public project: anyone may read its files
        assert (await app.client.get(file["url"], headers=auth(who))).status_code == 200

    assert_problem(await upload(app, other_client, project_files(project)), 403)
    assert_problem(await upload(app, dev, project_files(project)), 403)
    assert_problem(await upload(app, None, project_files(project)), 401)
    assert_problem(await app.client.delete(file["url"], headers=dev.auth), 403)
    assert_problem(await app.client.delete(file["url"], headers=other_client.auth), 403)

    other = await post_project(app, other_client)
    wrong_parent = f"{project_files(other)}/{file['id']}"  # the id of a file of another project
    assert_problem(await app.client.get(wrong_parent, headers=other_client.auth), 404)
    assert_problem(await app.client.delete(wrong_parent, headers=other_client.auth), 404)
    assert_problem(await app.client.get(f"{project_files(project)}/{uuid.uuid4()}"), 404)


async def test_invite_only_and_draft_project_files_are_hidden_from_strangers(app: App) -> None:
    owner = await client(app)
    invited, stranger = await developer(app, "Invited"), await developer(app, "Stranger")
    private = await post_project(app, owner, visibility="invite_only")
    file = (await upload(app, owner, project_files(private))).json()
    response = await app.client.post(
        f"{API}/projects/{private['id']}/invites", headers=owner.auth, json={"developer_id": invited.id}
    )
    assert response.status_code == 204, response.text

    assert (await app.client.get(file["url"], headers=invited.auth)).status_code == 200
    assert_problem(await app.client.get(file["url"], headers=stranger.auth), 404)
    assert_problem(await app.client.get(file["url"]), 404)
    assert_problem(await upload(app, stranger, project_files(private)), 404)

    draft = await post_project(app, owner, publish=False)
    drafted = await upload(app, owner, project_files(draft))
    assert drafted.status_code == 201, drafted.text
    assert_problem(await app.client.get(drafted.json()["url"], headers=stranger.auth), 404)


async def test_files_change_only_while_the_project_is_a_draft_or_open(app: App) -> None:
    owner = await client(app)
    project = await post_project(app, owner)
    file = (await upload(app, owner, project_files(project))).json()
    await set_row(app, Project, project["id"], status=ProjectStatus.HIRED)
    assert_problem(await upload(app, owner, project_files(project)), 409)
    assert_problem(await app.client.delete(file["url"], headers=owner.auth), 409)
    assert (await app.client.get(file["url"], headers=owner.auth)).status_code == 200


# ---------------------------------------------------------------------------
# Bad files
# ---------------------------------------------------------------------------


async def test_bad_files_are_refused_naming_the_field(app: App) -> None:
    owner = await client(app)
    url = project_files(await post_project(app, owner))
    empty = assert_problem(await upload(app, owner, url, "empty.pdf", b""), 400, field="file")
    assert "empty" in empty["detail"]
    script = assert_problem(
        await upload(app, owner, url, "page.html", b"<script>alert(1)</script>"), 400, field="file"
    )
    assert "not a type you can attach" in script["detail"]
    spoofed = assert_problem(
        await upload(app, owner, url, "invoice.pdf", b"<script>x</script>"), 400, field="file"
    )
    assert "named .pdf but holds plain text" in spoofed["detail"]
    assert_problem(await upload(app, owner, url, "photo.png", PDF, "image/png"), 400, field="file")
    assert_problem(await upload(app, owner, url, "notes.txt", b"MZ\x90\x00\x03\x00"), 400, field="file")
    assert_problem(await upload(app, owner, url, "plan.docx", office("xl/")), 400, field="file")
    assert_problem(await upload(app, owner, url, "no-extension", PDF), 400, field="file")
    assert await stored_keys(app) == set()


async def test_accepted_types_are_served_with_the_type_of_their_content(app: App) -> None:
    owner = await client(app)
    url = project_files(await post_project(app, owner))
    cases = [
        ("mock-up.PNG", PNG, "image/png"),
        ("notes.md", "# Plan\n\nÉtape 1".encode(), "text/markdown"),
        (
            "plan.docx",
            office("word/"),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        ("budget.xlsx", office("xl/"), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("deck.zip", office("ppt/"), "application/zip"),  # an Office file is a ZIP too
    ]
    for name, data, expected in cases:
        response = await upload(app, owner, url, name, data, "application/octet-stream")
        assert response.status_code == 201, (name, response.text)
        assert response.json()["content_type"] == expected
        download = await app.client.get(response.json()["url"], headers=owner.auth)
        assert download.headers["content-type"] == expected + (
            "; charset=utf-8" if name.endswith(".md") else ""
        )
        assert download.content == data


async def test_files_over_the_size_limit_are_refused_with_413(apps: Apps) -> None:
    settings = await apps.settings(accounts=MARKET_ACCOUNTS, uploads={"max_attachment_bytes": 2048})
    app = await open_market(apps, settings=settings)
    owner = await client(app)
    url = project_files(await post_project(app, owner))
    assert (await upload(app, owner, url, "small.pdf", PDF + b" " * (2048 - len(PDF)))).status_code == 201
    big = assert_problem(await upload(app, owner, url, "big.pdf", PDF + b" " * 2048), 413, field="file")
    assert "larger than 2 KB" in big["detail"]


async def test_a_project_holds_at_most_ten_files(app: App) -> None:
    owner = await client(app)
    url = project_files(await post_project(app, owner))
    for number in range(MAX_ATTACHMENTS):
        assert (await upload(app, owner, url, f"part-{number}.pdf")).status_code == 201
    too_many = assert_problem(await upload(app, owner, url, "one-more.pdf"), 400, field="file")
    assert "at most 10 files" in too_many["detail"]
    assert len(await stored_keys(app)) == MAX_ATTACHMENTS


# ---------------------------------------------------------------------------
# Proposals
# ---------------------------------------------------------------------------


async def test_proposal_files_are_seen_by_its_developer_and_the_projects_client_only(app: App) -> None:
    owner, other_client = await client(app), await client(app, "Other client")
    author, other_dev = await developer(app, "Author"), await developer(app, "Other developer")
    project = await post_project(app, owner)
    proposal = await bid(app, author, project)

    uploaded = await upload(app, author, proposal_files(proposal), "portfolio.png", PNG, "image/png")
    assert uploaded.status_code == 201, uploaded.text
    file = uploaded.json()
    assert file["url"] == f"{proposal_files(proposal)}/{file['id']}"

    for who in (author, owner):
        download = await app.client.get(file["url"], headers=who.auth)
        assert download.status_code == 200
        assert download.content == PNG
        assert download.headers["content-type"] == "image/png"
        assert download.headers["x-content-type-options"] == "nosniff"
        assert download.headers["content-disposition"].startswith("attachment;")
    for stranger in (other_dev, other_client, None):
        assert_problem(await app.client.get(file["url"], headers=auth(stranger)), 404)

    seen = (await app.client.get(f"{API}/proposals/{proposal['id']}", headers=owner.auth)).json()
    assert [a["id"] for a in seen["attachments"]] == [file["id"]]
    compared = (await app.client.get(f"{API}/projects/{project['id']}/proposals", headers=owner.auth)).json()
    assert [a["filename"] for a in compared[0]["attachments"]] == ["portfolio.png"]

    # Only the developer changes a proposal's files: the client is told no, strangers see nothing.
    assert_problem(await upload(app, owner, proposal_files(proposal)), 403)
    assert_problem(await upload(app, other_dev, proposal_files(proposal)), 404)
    assert_problem(await upload(app, None, proposal_files(proposal)), 401)
    assert_problem(await app.client.delete(file["url"], headers=owner.auth), 403)
    assert_problem(await app.client.delete(file["url"], headers=other_dev.auth), 404)

    assert (await app.client.delete(file["url"], headers=author.auth)).status_code == 204
    assert await stored_keys(app) == set()


async def test_proposal_files_freeze_once_shortlisted(app: App) -> None:
    owner, author = await client(app), await developer(app)
    project = await post_project(app, owner)
    proposal = await bid(app, author, project)
    file = (await upload(app, author, proposal_files(proposal))).json()
    shortlisted = await app.client.post(f"{API}/proposals/{proposal['id']}/shortlist", headers=owner.auth)
    assert shortlisted.status_code == 200, shortlisted.text
    assert_problem(await upload(app, author, proposal_files(proposal)), 409)
    assert_problem(await app.client.delete(file["url"], headers=author.auth), 409)
    assert (await app.client.get(file["url"], headers=owner.auth)).status_code == 200


async def test_bad_and_too_many_proposal_files_are_refused(app: App) -> None:
    owner, author = await client(app), await developer(app)
    proposal = await bid(app, author, await post_project(app, owner))
    url = proposal_files(proposal)
    assert_problem(await upload(app, author, url, "cv.pdf", b""), 400, field="file")
    assert_problem(await upload(app, author, url, "cv.pdf", PNG), 400, field="file")
    for number in range(MAX_ATTACHMENTS):
        assert (
            await upload(app, author, url, f"sample-{number}.txt", b"hello", "text/plain")
        ).status_code == 201
    assert_problem(await upload(app, author, url, "one-more.txt", b"hello"), 400, field="file")


async def test_deleting_a_project_cascades_to_its_rows_and_names_the_files_to_delete(app: App) -> None:
    import sqlalchemy as sa

    from mercato.core.projects.attachments import AttachmentService

    owner, author = await client(app), await developer(app)
    project = await post_project(app, owner)
    proposal = await bid(app, author, project)
    await upload(app, owner, project_files(project))
    await upload(app, author, proposal_files(proposal))
    keys = await stored_keys(app)
    assert len(keys) == 2

    async def delete_project() -> list[str]:
        files = AttachmentService(app.site)
        async with app.site.db.transaction() as session:
            found = await files.keys_of_project(session, uuid.UUID(project["id"]))
            await session.execute(sa.delete(Project).where(Project.id == uuid.UUID(project["id"])))
        await files.discard(found)
        return found

    assert set(await app.on_loop(delete_project)) == keys
    assert await stored_keys(app) == set()
    for key in keys:
        assert not await exists_in_storage(app, key)


async def test_attachment_routes_are_in_the_openapi_schema(app: App) -> None:
    schema = (await app.client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    upload_op = paths["/api/v1/projects/{project_id}/attachments"]["post"]
    assert "multipart/form-data" in upload_op["requestBody"]["content"]
    assert {"400", "413", "409"} <= set(upload_op["responses"])
    download_op = paths["/api/v1/proposals/{proposal_id}/attachments/{attachment_id}"]["get"]
    assert "404" in download_op["responses"]
    assert "delete" in paths["/api/v1/projects/{project_id}/attachments/{attachment_id}"]
    assert "attachments" in schema["components"]["schemas"]["ProjectOut"]["properties"]


# ---------------------------------------------------------------------------
# Unit-sized checks of the file rules
# ---------------------------------------------------------------------------


def test_names_are_cleaned_and_sent_safely() -> None:
    assert clean_filename("../../etc/passwd.txt") == "passwd.txt"
    assert clean_filename("C:\\Users\\me\\plan.pdf") == "plan.pdf"
    assert clean_filename('a"b<c>\r\nd.pdf') == "a_b_c_d.pdf"
    assert clean_filename("x" * 300 + ".pdf").endswith(".pdf")
    assert len(clean_filename("x" * 300 + ".pdf")) == 150
    header = content_disposition('résumé "final".pdf')
    assert header.startswith('attachment; filename="resume _final_.pdf"; ')
    assert header.endswith("filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf")
    assert sniff(b"PK\x03\x04 not really a zip") is None
    assert sniff("häll\u00f6".encode("latin-1")) is None


# ---------------------------------------------------------------------------
# The theme's forms
# ---------------------------------------------------------------------------


async def test_files_go_through_the_theme_forms_with_csrf(open_site: Any) -> None:
    pages = await open_site()
    owner, _ = await person(pages, "files-client@example.com", "Clara Client", "client")
    dev, _ = await person(pages, "files-dev@example.com", "Dev Eloper", "developer")
    stranger, _ = await person(pages, "files-other@example.com", "Other Dev", "developer")

    # Post a project with two files through the form.
    form = project_form()
    files = [
        ("attachments", ("brief.pdf", PDF, "application/pdf")),
        ("attachments", ("mock-up.png", PNG, "image/png")),
    ]
    created = await owner.post("/projects/new", form, files=files)  # type: ignore[arg-type]
    assert created.status_code == 303, created.text
    project_id = re.match(r"^/projects/([0-9a-f-]{36})\?", created.headers["location"]).group(1)  # type: ignore[union-attr]
    page = await dev.get(f"/projects/{project_id}")
    links = re.findall(rf'href="(/api/v1/projects/{project_id}/attachments/[0-9a-f-]{{36}})"', page.text)
    assert len(links) == 2
    assert "brief.pdf" in page.text
    assert "mock-up.png" in page.text
    assert (await dev.get(links[0])).content == PDF  # the browser's cookie is enough to download

    # A spoofed file is refused next to the field, the rest of the input kept.
    bad = await owner.post(
        "/projects/new",
        project_form(title="Another shop checkout"),
        files={"attachments": ("notes.pdf", b"just text", "application/pdf")},
    )
    assert bad.status_code == 400
    assert 'id="attachments-error"' in bad.text
    assert "named .pdf but holds plain text" in bad.text
    assert 'value="Another shop checkout"' in bad.text

    # The edit form lists the files with a remove button each (its own small form, CSRF included).
    edit = await owner.get(f"/projects/{project_id}/edit")
    assert 'enctype="multipart/form-data"' in edit.text
    removes = re.findall(rf'action="(/projects/{project_id}/attachments/[0-9a-f-]{{36}}/delete)"', edit.text)
    assert len(removes) == 2
    removed = await owner.post(removes[0])
    assert removed.status_code == 303
    added = await owner.post(
        f"/projects/{project_id}/edit",
        project_form(),
        files={"attachments": ("spec.md", b"# Spec\n", "text/markdown")},
    )
    assert added.status_code == 303, added.text
    page = await owner.get(f"/projects/{project_id}")
    assert "spec.md" in page.text
    assert "mock-up.png" in page.text
    assert "brief.pdf" not in page.text

    # A bid with a file: the client sees it on the proposal card, the author on theirs.
    sent = await dev.post(
        f"/projects/{project_id}/proposals",
        bid_form(),
        files={"attachments": ("work-sample.pdf", PDF, "application/pdf")},
    )
    assert sent.status_code == 303, sent.text
    owner_page = await owner.get(f"/projects/{project_id}")
    (proposal_id,) = proposal_ids(owner_page)
    proposal_links = re.findall(
        rf'href="(/api/v1/proposals/{proposal_id}/attachments/[0-9a-f-]{{36}})"', owner_page.text
    )
    assert len(proposal_links) == 1
    assert "work-sample.pdf" in owner_page.text
    assert (await owner.get(proposal_links[0])).content == PDF
    mine = await dev.get(f"/projects/{project_id}")
    assert proposal_links[0] in mine.text
    assert (await stranger.get(proposal_links[0])).status_code == 404

    # The author removes it while editing the proposal.
    editing = await dev.get(f"/proposals/{proposal_id}/edit")
    remove = re.search(
        rf'action="(/proposals/{proposal_id}/attachments/[0-9a-f-]{{36}}/delete)"', editing.text
    )
    assert remove, editing.text
    assert (await dev.post(remove.group(1))).status_code == 303
    assert "work-sample.pdf" not in (await owner.get(f"/projects/{project_id}")).text

"""Files on projects (the client's) and on proposals (the developer's).

The rules: at most :data:`MAX_ATTACHMENTS` files each; a project's files change while it is a
draft or open, a proposal's while it can be edited (until it is shortlisted). Files are never
served from the public media URL: they are read from storage by routes that check who asks
(the project's viewers; a proposal's developer and the project's client). Who owns the project
or proposal is checked by the callers with ``ProjectService``/``ProposalService``; this module
takes the owner already checked and locked, or a :data:`LoadOwner` that loads it so.

Uploads are checked and stored before the database transaction (the slow part stays out of
it); a transaction that then fails deletes what it stored, and removed rows' files are deleted
only after the commit, so the database never points at a missing file.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Literal

import structlog
from litestar import Response
from litestar.exceptions import ClientException, NotFoundException
from sqlalchemy import func, select

from mercato.core.errors import field_error
from mercato.core.files import CheckedFile, StoredFile, check_file, content_disposition, store_file
from mercato.core.projects import schemas
from mercato.core.projects.models import Attachment, Project, ProjectStatus, Proposal, ProposalStatus

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from litestar.datastructures import UploadFile
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.accounts.models import User
    from mercato.core.site import Site
    from mercato.core.storage import Storage

log = structlog.get_logger("mercato.projects")

MAX_ATTACHMENTS = 10
"""Files per project and per proposal."""
STORAGE_FOLDER = "attachments"
DOWNLOAD_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, no-store",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}

Owner = Literal["project", "proposal"]
LoadOwner = Callable[["AsyncSession", bool], Awaitable[tuple["User", Project | Proposal]]]
"""``load(session, lock)``: the person asking and their project or proposal, checked by the caller
with the services (404, 403, 409); locked as for a change when ``lock`` (a proposal always is)."""


class AttachmentsLocked(ClientException):
    """409: the project or proposal can no longer change."""

    status_code = 409


def attachment_url(row: Attachment) -> str:
    """The permission-checked route that serves ``row``."""
    if row.project_id is not None:
        return f"/api/v1/projects/{row.project_id}/attachments/{row.id}"
    return f"/api/v1/proposals/{row.proposal_id}/attachments/{row.id}"


def attachment_out(row: Attachment) -> schemas.AttachmentOut:
    return schemas.AttachmentOut(
        id=row.id,
        filename=row.filename,
        content_type=row.content_type,
        size=row.size,
        url=attachment_url(row),
        created_at=row.created_at,
    )


async def attachments_of(
    session: AsyncSession, owner: Owner, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[schemas.AttachmentOut]]:
    """The files of many projects (or proposals) in one query: owner id → files, oldest first."""
    found: dict[uuid.UUID, list[schemas.AttachmentOut]] = defaultdict(list)
    if not ids:
        return found
    column = Attachment.project_id if owner == "project" else Attachment.proposal_id
    rows = await session.execute(
        select(Attachment).where(column.in_(list(ids))).order_by(Attachment.created_at, Attachment.id)
    )
    for row in rows.scalars():
        owner_id = row.project_id if owner == "project" else row.proposal_id
        assert owner_id is not None
        found[owner_id].append(attachment_out(row))
    return found


def _kind(owner: Project | Proposal) -> Owner:
    return "project" if isinstance(owner, Project) else "proposal"


def _may_change(owner: Project | Proposal) -> None:
    """409 unless ``owner`` is a draft or open project, or a proposal that can still be edited."""
    if isinstance(owner, Project):
        if owner.status not in (ProjectStatus.DRAFT, ProjectStatus.OPEN):
            raise AttachmentsLocked(f"This project is {owner.status}; its files can no longer change.")
    elif owner.status != ProposalStatus.SUBMITTED:
        raise AttachmentsLocked(f"This proposal is {owner.status}; its files can no longer change.")


class AttachmentService:
    """Attachments of one site."""

    def __init__(self, site: Site) -> None:
        self.site = site

    @property
    def storage(self) -> Storage:
        return self.site.plugins.storage(self.site)

    # -- files ---------------------------------------------------------------------
    async def check(self, uploads: Iterable[tuple[str, bytes]], *, field: str) -> list[CheckedFile]:
        """Check every ``(filename, data)``; the first bad one raises (413, or 400 naming ``field``)."""
        limit = self.site.settings.uploads.max_attachment_bytes
        return [await check_file(data, name, field=field, max_bytes=limit) for name, data in uploads]

    async def store(self, checked: Sequence[CheckedFile]) -> list[StoredFile]:
        """Save checked files under fresh keys (all or none)."""
        stored: list[StoredFile] = []
        try:
            for item in checked:
                stored.append(await store_file(self.storage, item, folder=STORAGE_FOLDER))
        except BaseException:
            await self.discard([s.key for s in stored])
            raise
        return stored

    async def discard(self, keys: Iterable[str]) -> None:
        """Delete stored files the database no longer (or never did) point at."""
        storage = self.storage
        for key in keys:
            try:
                await storage.delete(key)
            except Exception:
                log.warning("could not delete a stored file", key=key)

    async def download(self, row: Attachment) -> Response[bytes]:
        """The file as a download (never rendered by the browser)."""
        try:
            data = await self.storage.load(row.storage_key)
        except FileNotFoundError:
            log.warning("an attachment's file is missing", key=row.storage_key, attachment_id=str(row.id))
            raise NotFoundException(
                "This file is missing; ask the person who attached it to upload it again."
            ) from None
        headers = {**DOWNLOAD_HEADERS, "Content-Disposition": content_disposition(row.filename)}
        return Response(data, media_type=row.content_type, headers=headers)

    # -- rows ------------------------------------------------------------------------
    async def count(self, session: AsyncSession, owner: Owner, owner_id: uuid.UUID) -> int:
        column = Attachment.project_id if owner == "project" else Attachment.proposal_id
        return int((await session.execute(select(func.count()).where(column == owner_id))).scalar_one())

    async def check_room(
        self, session: AsyncSession, owner: Owner, owner_id: uuid.UUID, *, adding: int, field: str
    ) -> None:
        """400 naming ``field`` when ``adding`` more files would pass :data:`MAX_ATTACHMENTS`."""
        have = await self.count(session, owner, owner_id)
        if have + adding > MAX_ATTACHMENTS:
            left = MAX_ATTACHMENTS - have
            what = "A project" if owner == "project" else "A proposal"
            room = f"you can add {left} more" if left > 0 else "remove one first"
            raise field_error(field, f"{what} holds at most {MAX_ATTACHMENTS} files; {room}.")

    async def may_add(
        self, session: AsyncSession, owner: Project | Proposal, adding: int, *, field: str = "file"
    ) -> None:
        """409 unless ``owner``'s files may change; 400 naming ``field`` unless ``adding`` more fit."""
        _may_change(owner)
        await self.check_room(session, _kind(owner), owner.id, adding=adding, field=field)

    async def attach(
        self,
        session: AsyncSession,
        uploader: User,
        files: Sequence[StoredFile],
        owner: Project | Proposal,
        *,
        field: str = "file",
    ) -> list[Attachment]:
        """Point ``owner`` (a project or proposal loaded locked, as for a change) at stored files;
        no files, no checks."""
        if not files:
            return []
        await self.may_add(session, owner, len(files), field=field)
        project_id, proposal_id = (owner.id, None) if isinstance(owner, Project) else (None, owner.id)
        rows = [
            Attachment(
                project_id=project_id,
                proposal_id=proposal_id,
                uploader_id=uploader.id,
                filename=item.filename,
                content_type=item.content_type,
                size=item.size,
                storage_key=item.key,
            )
            for item in files
        ]
        session.add_all(rows)
        await session.flush()
        return rows

    @asynccontextmanager
    async def attaching(
        self, checked: Sequence[CheckedFile]
    ) -> AsyncIterator[tuple[AsyncSession, list[StoredFile]]]:
        """Store ``checked`` files, then open the transaction to :meth:`attach` them in (with any
        other work); if it fails, the stored files are deleted again."""
        stored = await self.store(checked)
        try:
            async with self.site.db.transaction() as session:
                yield session, stored
        except BaseException:
            await self.discard(item.key for item in stored)
            raise

    async def add(
        self,
        upload: UploadFile,
        load: LoadOwner,
        *,
        check_in: Callable[[], AbstractAsyncContextManager[AsyncSession]],
    ) -> Attachment:
        """Attach one uploaded file (the form field ``file``) to what ``load`` finds. Fails fast in
        a ``check_in()`` session (``load`` unlocked) before the file is read; then checks and
        stores it, and attaches it in a transaction (``load`` locked)."""
        async with check_in() as session:
            _, owner = await load(session, False)
            await self.may_add(session, owner, 1)
        checked = await self.check([(upload.filename or "", await upload.read())], field="file")
        async with self.attaching(checked) as (session, stored):
            uploader, owner = await load(session, True)
            return (await self.attach(session, uploader, stored, owner))[0]

    async def get(
        self, session: AsyncSession, owner: Owner, owner_id: uuid.UUID, attachment_id: uuid.UUID
    ) -> Attachment:
        """The attachment if it belongs to that project or proposal; 404 otherwise."""
        row = await session.get(Attachment, attachment_id)
        if row is None or (row.project_id if owner == "project" else row.proposal_id) != owner_id:
            raise NotFoundException("No such file.")
        return row

    async def remove(self, load: LoadOwner, attachment_id: uuid.UUID) -> None:
        """Remove a file from what ``load`` finds (locked) in a transaction; its stored file is
        deleted after the commit."""
        async with self.site.db.transaction() as session:
            _, owner = await load(session, True)
            row = await self.get(session, _kind(owner), owner.id, attachment_id)
            _may_change(owner)
            await session.delete(row)
        await self.discard([row.storage_key])

    async def keys_of_project(self, session: AsyncSession, project_id: uuid.UUID) -> list[str]:
        """Every storage key of a project and of its proposals: collect them before the project
        row is deleted (the rows cascade, the files must be deleted after the commit)."""
        proposal_ids = select(Proposal.id).where(Proposal.project_id == project_id)
        rows = await session.execute(
            select(Attachment.storage_key).where(
                (Attachment.project_id == project_id) | Attachment.proposal_id.in_(proposal_ids)
            )
        )
        return list(rows.scalars())

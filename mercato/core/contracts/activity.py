"""A contract's timeline and its files.

Every step on a contract (created, a milestone proposed, funded, submitted with a note and
deliverables, changes asked for, money released, a dispute's evidence and outcome) is one
:class:`~mercato.core.contracts.models.ContractActivity` row, written by :func:`record` in the
transaction that takes the step. The rows are never changed: the timeline is the contract's
history as its parties saw it.

Files are uploaded before the step that hands them over (:meth:`ContractFiles.upload`: checked
and stored outside any transaction, visible only to their uploader), then attached to the step
(:meth:`ContractFiles.attach`, in its transaction). They live in a private storage folder and
are served by a route that checks who asks.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import structlog
from litestar import Response
from litestar.exceptions import NotFoundException
from sqlalchemy import func, select

from mercato.core.contracts import schemas
from mercato.core.contracts.models import ContractActivity, ContractFile
from mercato.core.errors import field_error
from mercato.core.files import check_file, content_disposition, store_file
from mercato.core.pagination import newest_first
from mercato.core.states import InvalidTransition

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site

log = structlog.get_logger("mercato.contracts")

STORAGE_FOLDER = "attachments"
"""Under ``attachments/``: a private folder, never served at a public URL."""
MAX_FILES_PER_STEP = 10
MAX_LOOSE_FILES = 20
"""Uploaded files a person may hold on one contract before handing them over."""
DOWNLOAD_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, no-store",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


def record(
    session: AsyncSession,
    contract_id: uuid.UUID,
    kind: str,
    *,
    milestone_id: uuid.UUID | None = None,
    actor_id: uuid.UUID | None = None,
    message: str = "",
    amount: int | None = None,
    data: dict[str, Any] | None = None,
) -> ContractActivity:
    """Add a step to a contract's timeline (in the caller's transaction)."""
    row = ContractActivity(
        id=uuid.uuid4(), contract_id=contract_id, milestone_id=milestone_id, kind=kind, actor_id=actor_id,
        message=message, amount=amount, data=data or {},
    )
    session.add(row)
    return row


def file_url(row: ContractFile) -> str:
    return f"/api/v1/contracts/{row.contract_id}/files/{row.id}"


def file_out(row: ContractFile) -> schemas.ContractFileOut:
    return schemas.ContractFileOut(id=row.id, filename=row.filename, content_type=row.content_type,
                                   size=row.size, url=file_url(row), created_at=row.created_at)


async def timeline(
    session: AsyncSession, contract_id: uuid.UUID, *, limit: int, cursor: str | None
) -> schemas.ActivityPage:
    """A contract's steps, newest first, with their files."""
    query = select(ContractActivity).where(ContractActivity.contract_id == contract_id)
    page, next_cursor = await newest_first(session, query, moment=ContractActivity.created_at,
                                           row_id=ContractActivity.id, cursor=cursor, limit=limit)
    files: dict[uuid.UUID, list[schemas.ContractFileOut]] = defaultdict(list)
    if page:
        rows = await session.scalars(
            select(ContractFile).where(ContractFile.activity_id.in_([a.id for a in page]))
            .order_by(ContractFile.created_at, ContractFile.id)
        )
        for row in rows:
            assert row.activity_id is not None
            files[row.activity_id].append(file_out(row))
    return schemas.ActivityPage(items=[
        schemas.ActivityOut(id=a.id, kind=a.kind, milestone_id=a.milestone_id, actor_id=a.actor_id,
                            message=a.message, amount=a.amount, data=a.data, created_at=a.created_at,
                            files=files.get(a.id, []))
        for a in page
    ], next_cursor=next_cursor)


class ContractFiles:
    """Files of one site's contracts. Callers check that the person is a party."""

    def __init__(self, site: Site) -> None:
        self.site = site

    async def upload(self, contract_id: uuid.UUID, uploader_id: uuid.UUID, filename: str,
                     data: bytes) -> ContractFile:
        """Check and store a file, then keep it for ``uploader_id`` until a step hands it over
        (400 naming ``file`` when it is not acceptable or they hold too many already)."""
        async with self.site.db.reading() as session:
            await self._room(session, contract_id, uploader_id)
        checked = await check_file(data, filename, field="file",
                                   max_bytes=self.site.settings.uploads.max_attachment_bytes)
        storage = self.site.plugins.storage(self.site)
        stored = await store_file(storage, checked, folder=STORAGE_FOLDER)
        try:
            async with self.site.db.transaction() as session:
                await self._room(session, contract_id, uploader_id)
                row = ContractFile(id=uuid.uuid4(), contract_id=contract_id, uploader_id=uploader_id,
                                   filename=stored.filename, content_type=stored.content_type,
                                   size=stored.size, storage_key=stored.key)
                session.add(row)
                await session.flush()
                return row
        except BaseException:
            await self._delete_stored([stored.key])
            raise

    @staticmethod
    async def _room(session: AsyncSession, contract_id: uuid.UUID, uploader_id: uuid.UUID) -> None:
        loose = await session.scalar(select(func.count()).where(
            ContractFile.contract_id == contract_id, ContractFile.uploader_id == uploader_id,
            ContractFile.activity_id.is_(None)))
        if (loose or 0) >= MAX_LOOSE_FILES:
            raise field_error("file", f"You hold {MAX_LOOSE_FILES} files not yet handed over on this "
                                      "contract; submit them or remove some first.")

    async def attach(self, session: AsyncSession, contract_id: uuid.UUID, uploader_id: uuid.UUID,
                     file_ids: Sequence[uuid.UUID], activity: ContractActivity, *,
                     field: str = "files") -> None:
        """Hand ``file_ids`` (uploaded by ``uploader_id`` to this contract, not yet handed over)
        over with ``activity``; 400 naming ``field`` when one is not such a file."""
        wanted = list(dict.fromkeys(file_ids))
        if not wanted:
            return
        if len(wanted) > MAX_FILES_PER_STEP:
            raise field_error(field, f"Hand over at most {MAX_FILES_PER_STEP} files at a time.")
        rows = list(await session.scalars(
            select(ContractFile).where(
                ContractFile.id.in_(wanted), ContractFile.contract_id == contract_id,
                ContractFile.uploader_id == uploader_id, ContractFile.activity_id.is_(None),
            ).with_for_update()
        ))
        if len(rows) != len(wanted):
            raise field_error(field, "A file is not one you uploaded to this contract, or it was handed over "
                                     "already; upload it again.")
        await session.flush()  # the activity row first
        for row in rows:
            row.activity_id = activity.id

    async def get(self, session: AsyncSession, contract_id: uuid.UUID, file_id: uuid.UUID,
                  user_id: uuid.UUID) -> ContractFile:
        """A file of this contract that ``user_id`` may read: handed over, or their own."""
        row = await session.get(ContractFile, file_id)
        if row is None or row.contract_id != contract_id or (
            row.activity_id is None and row.uploader_id != user_id
        ):
            raise NotFoundException("No such file.")
        return row

    async def download(self, row: ContractFile) -> Response[bytes]:
        try:
            data = await self.site.plugins.storage(self.site).load(row.storage_key)
        except FileNotFoundError:
            log.warning("a contract file is missing", key=row.storage_key, file_id=str(row.id))
            raise NotFoundException("This file is missing from storage.") from None
        headers = {**DOWNLOAD_HEADERS, "Content-Disposition": content_disposition(row.filename)}
        return Response(data, media_type=row.content_type, headers=headers)

    async def remove(self, contract_id: uuid.UUID, file_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """Remove a file of one's own not yet handed over (handed-over files stay: they are
        part of the contract's record)."""
        async with self.site.db.transaction() as session:
            row = await self.get(session, contract_id, file_id, user_id)
            if row.uploader_id != user_id:
                raise NotFoundException("No such file.")
            if row.activity_id is not None:
                raise InvalidTransition("This file was handed over; it stays on the contract's record.")
            key = row.storage_key
            await session.delete(row)
        await self._delete_stored([key])

    async def _delete_stored(self, keys: Sequence[str]) -> None:
        storage = self.site.plugins.storage(self.site)
        for key in keys:
            try:
                await storage.delete(key)
            except Exception:
                log.warning("could not delete a stored file", key=key)

"""``/report``: the form people use to report content, and its thank-you."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromQuery

from mercato.core.accounts.forms import AnyRequest, Page, errors_of, form_text, to_login
from mercato.core.accounts.middleware import principal_of
from mercato.core.accounts.routes import current_user
from mercato.core.catalog.display import plain_errors, refused
from mercato.core.moderation.reports import REASON_LABELS, ReportService
from mercato.core.site import Site


def _uuid(text: str | None) -> uuid.UUID:
    try:
        return uuid.UUID(text or "")
    except ValueError:
        raise NotFoundException("Nothing to report here.") from None


async def _page(
    request: AnyRequest,
    site: Site,
    kind: str,
    subject_id: uuid.UUID,
    *,
    values: dict[str, str],
    errors: dict[str, str],
    done: bool = False,
    status_code: int = 200,
) -> Page:
    principal = principal_of(request)
    assert principal is not None
    service = ReportService(site)
    async with site.db.reading() as session:
        try:
            subject, item = await service.reportable(session, principal.user_id, kind, subject_id)
        except HTTPException as exc:
            if exc.status_code == 400:  # an unknown kind, or their own: nothing they can report
                raise NotFoundException("Nothing to report here.") from None
            raise
    return await site.templates.page(
        request,
        "moderation/report.html",
        {
            "kind": kind,
            "subject_id": subject_id,
            "label": subject.label,
            "item": item,
            "reasons": list(REASON_LABELS.items()),
            "values": values,
            "errors": errors,
            "done": done,
        },
        status_code=status_code,
    )


@get("/report", include_in_schema=False, name="moderation:report")
async def report_form(
    request: AnyRequest,
    site: NamedDependency[Site],
    type: FromQuery[str | None] = None,
    id: FromQuery[str | None] = None,
) -> Page:
    """What is reported, and a reason to choose."""
    if principal_of(request) is None:
        return to_login(f"/report?type={type or ''}&id={id or ''}")
    return await _page(request, site, type or "", _uuid(id), values={}, errors={})


@post("/report", include_in_schema=False, name="moderation:report-send")
async def send_report(request: AnyRequest, site: NamedDependency[Site]) -> Page:
    """File the report, then thank the reporter."""
    form = await request.form()
    kind, subject_id = form_text(form, "type"), _uuid(form_text(form, "id"))
    if principal_of(request) is None:
        return to_login(f"/report?type={kind}&id={subject_id}")
    values = {"reason": form_text(form, "reason"), "details": form_text(form, "details")}
    errors: dict[str, str] = {}
    if values["reason"] not in REASON_LABELS:
        errors["reason"] = "Choose a reason."
    service = ReportService(site)
    status_code = 400
    if not errors:
        try:
            user_id = principal_of(request).user_id  # type: ignore[union-attr]
            await service.check_rate(user_id)
            async with site.db.transaction() as session:
                reporter = await current_user(request, session, site)
                await service.create(
                    session, reporter.id, kind, subject_id, values["reason"], values["details"]
                )
        except HTTPException as exc:
            if not refused(exc):
                raise
            errors.update(plain_errors(errors_of(exc, default_field="form")))
            status_code = exc.status_code
    if errors:
        return await _page(
            request, site, kind, subject_id, values=values, errors=errors, status_code=status_code
        )
    return await _page(request, site, kind, subject_id, values={}, errors={}, done=True)


PAGE_ROUTES: list[Any] = [report_form, send_report]

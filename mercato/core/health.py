"""Built-in plugin: ``GET /health`` (the process is alive) and ``GET /ready`` (the database
and JetStream answer; 503 naming the failing part otherwise)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from mercato import hookimpl
from mercato.core.site import Site

CHECK_TIMEOUT = 3.0


class Health(msgspec.Struct):
    """Liveness."""

    status: str


class Check(msgspec.Struct, omit_defaults=True):
    ok: bool
    error: str | None = None


class Readiness(msgspec.Struct):
    """Readiness: ``status`` is ``ready`` or ``unavailable``; ``checks`` names each part."""

    status: str
    checks: dict[str, Check]


@get("/health", tags=["health"], summary="Liveness", sync_to_thread=False)
def health() -> Health:
    return Health(status="ok")


@get("/ready", tags=["health"], summary="Readiness: database and JetStream",
     responses={503: ResponseSpec(data_container=Readiness, description="A part is not ready")})
async def ready(site: NamedDependency[Site]) -> Response[Readiness]:
    async def database() -> None:
        async with site.db.read_engine.connect() as conn:
            try:
                applied = set((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars())
            except DBAPIError:
                applied = set()
        missing = site.pending_migrations(applied)
        if missing:
            raise RuntimeError(f"migrations pending ({', '.join(missing)}): run `mercato db upgrade`")

    checks = {}
    for name, probe in (("database", database), ("events", site.events.check)):
        try:
            await asyncio.wait_for(probe(), CHECK_TIMEOUT)
            checks[name] = Check(ok=True)
        except Exception as exc:  # any failure means not ready; say which and why
            checks[name] = Check(ok=False, error=str(exc) or type(exc).__name__)
    ok = all(check.ok for check in checks.values())
    return Response(
        Readiness(status="ready" if ok else "unavailable", checks=checks),
        status_code=200 if ok else 503,
    )


@hookimpl
def register_routes(site: Site) -> list[Any]:
    return [health, ready]

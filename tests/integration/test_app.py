"""The assembled app: health, readiness, OpenAPI, problem details, request ids, theme."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mercato import create_app, hookimpl
from mercato.core.events import OutboxEvent
from mercato.core.plugins import build_plugin_manager
from mercato.core.site import Site
from tests.conftest import _delete_streams, _with_database


class Crashy:
    """A plugin whose route fails unexpectedly and one that validates input."""

    @hookimpl
    def register_routes(self, site: Site) -> list[Any]:
        @get("/api/v1/boom", sync_to_thread=False)
        def boom() -> dict[str, str]:
            raise RuntimeError("secret internal detail")

        @get("/api/v1/square", sync_to_thread=False)
        def square(n: FromQuery[int]) -> dict[str, int]:
            return {"square": n * n}

        @get("/boom-page", sync_to_thread=False)
        def boom_page() -> str:
            raise RuntimeError("secret internal detail")

        @get("/api/v1/outbox-size")
        async def outbox_size(db_session: NamedDependency[AsyncSession]) -> dict[str, int]:
            count = await db_session.scalar(select(func.count()).select_from(OutboxEvent))
            return {"size": int(count or 0)}

        return [boom, square, boom_page, outbox_size]


@pytest.fixture
async def client(migrated_settings: Any) -> Any:
    pm = build_plugin_manager(migrated_settings, extra=[("crashy", Crashy())])
    app = create_app(site=Site(migrated_settings, pm=pm))
    async with AsyncTestClient(app) as client:
        yield client
    await _drop_stream(migrated_settings)


async def _drop_stream(settings: Any) -> None:
    await _delete_streams(settings.events.nats_url, {settings.events.stream})


async def test_health_is_ok(client: Any) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_checks_database_and_jetstream(client: Any) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"] == {"database": {"ok": True}, "events": {"ok": True}}


async def test_ready_is_503_naming_the_database_when_it_is_unreachable(make_settings: Any) -> None:
    settings = make_settings(database={"url": "postgresql+asyncpg://nobody@127.0.0.1:9/none"})
    async with AsyncTestClient(create_app(settings)) as client:
        response = await client.get("/ready")
    await _drop_stream(settings)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["database"]["error"]
    assert body["checks"]["events"] == {"ok": True}


async def test_openapi_schema_is_served(client: Any) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/health" in schema["paths"]
    assert "/ready" in schema["paths"]


async def test_swagger_ui_uses_bundled_assets(client: Any) -> None:
    page = await client.get("/schema/swagger")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower()
    asset = await client.get("/schema/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200


async def test_unknown_api_path_is_problem_details_404(client: Any) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json() == {"type": "about:blank", "title": "Not Found", "status": 404}


async def test_unexpected_error_is_generic_500_with_request_id(client: Any) -> None:
    response = await client.get("/api/v1/boom", headers={"X-Request-ID": "req-12345678"})
    assert response.status_code == 500
    body = response.json()
    assert body["status"] == 500
    assert body["request_id"] == "req-12345678"
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
    assert response.headers["x-request-id"] == "req-12345678"


async def test_unexpected_error_in_a_page_renders_the_themed_error_page(client: Any) -> None:
    response = await client.get("/boom-page", headers={"Accept": "text/html"})
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert "secret internal detail" not in response.text
    assert response.headers["x-request-id"] in response.text


async def test_invalid_query_parameter_is_400_with_field_errors(client: Any) -> None:
    response = await client.get("/api/v1/square", params={"n": "seven"})
    assert response.status_code == 400
    body = response.json()
    assert body["title"] == "Invalid request"
    assert body["errors"][0]["field"] == "n"
    ok = await client.get("/api/v1/square", params={"n": "7"})
    assert ok.json() == {"square": 49}


async def test_generated_request_id_is_returned(client: Any) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    request_id = response.headers["x-request-id"]
    assert request_id != "bad id with spaces"
    assert len(request_id) == 32


async def test_home_page_renders_the_theme(client: Any) -> None:
    response = await client.get("/", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<main" in response.text
    assert "/static/css/mercato.css" in response.text
    css = await client.get("/static/css/mercato.css")
    assert css.status_code == 200
    assert "prefers-color-scheme" in css.text


async def test_missing_page_renders_themed_404(client: Any) -> None:
    response = await client.get("/no/such/page", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "404" in response.text


async def test_ready_is_503_when_migrations_are_pending(make_settings: Any, databases: Any) -> None:
    settings = _with_database(make_settings(), await databases.create_empty())
    async with AsyncTestClient(create_app(settings)) as client:
        response = await client.get("/ready")
    await _drop_stream(settings)
    assert response.status_code == 503
    check = response.json()["checks"]["database"]
    assert check["ok"] is False
    assert "mercato db upgrade" in check["error"]


async def test_unrouted_responses_carry_a_request_id(client: Any) -> None:
    response = await client.get("/api/v1/nothing-here", headers={"X-Request-ID": "abc-12345678"})
    assert response.status_code == 404
    assert len(response.headers["x-request-id"]) >= 8
    wrong_method = await client.post("/health")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["x-request-id"]


async def test_database_ahead_of_this_code_counts_as_ready(migrated_settings: Any) -> None:
    site = Site(migrated_settings)
    heads = site.migration_heads()
    assert site.pending_migrations(set(heads)) == []
    assert site.pending_migrations(set()) == sorted(heads)
    assert site.pending_migrations({"a_newer_revision_from_a_rolling_deploy"}) == []
    # Alembic drops a head from its version table once a plugin branch depends on it: the
    # plugin's revision stands for it (a graph of its own: core1 → core2, plug1 depends on core2)
    parents = {"core1": frozenset(), "core2": frozenset({"core1"}), "plug1": frozenset({"core2"})}
    site._revision_graph = (frozenset({"core2", "plug1"}), parents)
    assert site.pending_migrations({"plug1"}) == []
    assert site.pending_migrations({"core2"}) == ["plug1"]
    assert site.pending_migrations({"core1"}) == ["core2", "plug1"]
    await site.db.dispose()


async def test_routes_can_ask_for_a_database_session(client: Any) -> None:
    response = await client.get("/api/v1/outbox-size")
    assert response.status_code == 200
    assert response.json() == {"size": 0}


class Stamping:
    """A plugin adding middleware that sees who is signed in."""

    @hookimpl
    def register_middleware(self, site: Site) -> list[Any]:
        def stamp(app: Any) -> Any:
            async def middleware(scope: Any, receive: Any, send: Any) -> None:
                if scope["type"] != "http":
                    await app(scope, receive, send)
                    return
                who = b"anonymous" if scope.get("user") is None else b"signed-in"

                async def send_with_header(message: Any) -> None:
                    if message["type"] == "http.response.start":
                        message.setdefault("headers", []).append((b"x-who", who))
                    await send(message)

                await app(scope, receive, send_with_header)

            return middleware

        return [stamp]


async def test_plugin_middleware_wraps_routes_inside_authentication(migrated_settings: Any) -> None:
    pm = build_plugin_manager(migrated_settings, extra=[("stamping", Stamping())])
    async with AsyncTestClient(create_app(site=Site(migrated_settings, pm=pm))) as client:
        anonymous = await client.get("/health")
        registered = await client.post("/api/v1/auth/register", json={
            "email": "mw@example.com", "password": "plum orchard lantern", "display_name": "M W",
            "roles": ["client"]})
        token = registered.json()["access_token"]
        signed_in = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    await _drop_stream(migrated_settings)
    assert anonymous.headers["x-who"] == "anonymous"
    assert registered.status_code == 201, registered.text
    assert signed_in.status_code == 200
    assert signed_in.headers["x-who"] == "signed-in"

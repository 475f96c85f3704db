"""The app factory: one Litestar init plugin assembles the app from hook results."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import swagger_ui_bundle
from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins import InitPluginProtocol
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig
from sqlalchemy.ext.asyncio import AsyncSession

import mercato
from mercato.core.errors import exception_handlers
from mercato.core.requestid import request_id_middleware, stamp_request_id
from mercato.core.settings import Settings, load_settings
from mercato.core.site import Site

SWAGGER_ASSETS = "/schema/assets"


class MercatoCore(InitPluginProtocol):
    """Appends (never replaces) routes, middleware, dependencies and lifecycle from hooks."""

    def __init__(self, site: Site) -> None:
        self.site = site

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        site = self.site
        app_config.route_handlers.extend(site.plugins.routes(site))
        app_config.route_handlers.append(
            create_static_files_router(path="/static", directories=[str(d) for d in site.static_dirs()],
                                       name="static")
        )
        app_config.route_handlers.append(
            create_static_files_router(path=SWAGGER_ASSETS,
                                       directories=[swagger_ui_bundle.swagger_ui_path],
                                       name="swagger-assets")
        )
        app_config.middleware[0:0] = [request_id_middleware, *site.plugins.middleware(site)]
        app_config.before_send.append(stamp_request_id)
        app_config.exception_handlers.update(exception_handlers(site))
        app_config.dependencies.update(
            {"site": Provide(lambda: site, sync_to_thread=False),
             "db_session": Provide(self._db_session)}
        )
        app_config.signature_namespace.update({"Site": Site, "AsyncSession": AsyncSession})
        app_config.lifespan.append(self._lifespan)
        app_config.state["site"] = site
        # Room for the largest upload plus form fields; the upload code gives the friendly 413.
        uploads = site.settings.uploads
        app_config.request_max_body_size = max(
            10_000_000, uploads.max_image_bytes + 1_048_576, uploads.max_attachment_bytes + 1_048_576
        )
        app_config.template_config = TemplateConfig(
            engine=JinjaTemplateEngine.from_environment(site.templates.env)
        )
        app_config.openapi_config = OpenAPIConfig(
            title=f"{site.name} API",
            version=mercato.__version__,
            description="The mercato marketplace REST API. Errors are RFC 9457 problem details. "
                        "Authenticate with `Authorization: Bearer <access token>` from `/api/v1/auth/login`.",
            components=Components(security_schemes={
                "BearerToken": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT",
                                              description="An access token from /api/v1/auth/login."),
            }),
            security=[{"BearerToken": []}],
            path="/schema",
            render_plugins=[
                SwaggerRenderPlugin(
                    path="/swagger",
                    js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
                    css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
                    standalone_preset_js_url=f"{SWAGGER_ASSETS}/swagger-ui-standalone-preset.js",
                    favicon="<link rel='icon' type='image/svg+xml' href='/static/img/favicon.svg'>",
                )
            ],
        )
        return app_config

    async def _db_session(self) -> AsyncIterator[AsyncSession]:
        async with self.site.db.sessionmaker() as session:
            yield session

    @asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        await self.site.startup()
        try:
            yield
        finally:
            await self.site.shutdown()


def create_app(settings: Settings | None = None, *, site: Site | None = None) -> Litestar:
    """Build the ASGI app for ``settings`` (default: read from ``MERCATO_SITE`` / the
    current folder and the environment)."""
    if site is None:
        site = Site(settings if settings is not None else load_settings())
    return Litestar(plugins=[MercatoCore(site)], debug=False, logging_config=None)


def app_from_environment() -> Litestar:
    """Factory for ``uvicorn --factory``: the site folder comes from ``MERCATO_SITE``."""
    from mercato.core.logging import configure_logging

    settings = load_settings(os.environ.get("MERCATO_SITE", "."))
    configure_logging(settings.logging.level, settings.logging.format)
    return create_app(settings)

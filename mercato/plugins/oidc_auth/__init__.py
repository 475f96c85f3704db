"""Built-in plugin: sign in with any OpenID Connect provider (Keycloak, Authentik, Microsoft
Entra, GitLab, Okta…), configured from its discovery document.

Each ``[plugins.oidc_auth.providers.<id>]`` table adds one log-in button; ``<id>`` is used
in the callback URL ``<site.base_url>/auth/<id>/callback``::

    [plugins.oidc_auth.providers.company]
    label = "Company SSO"
    discovery_url = "https://sso.example.com/realms/staff/.well-known/openid-configuration"
    client_id = "mercato"
    client_secret = "…"
    scope = "openid email profile"   # the default
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import msgspec

from mercato import hookimpl
from mercato.core.security.oidc import OIDCProvider

if TYPE_CHECKING:
    from mercato.core.security.providers import AuthProvider
    from mercato.core.site import Site

PLUGIN_ID = "oidc_auth"
PROVIDER_ID = re.compile(r"[a-z0-9_-]+")
"""A provider id: it appears in URLs (``/auth/<id>/callback``) and must stay URL-safe."""


class OIDCProviderSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[plugins.oidc_auth.providers.<id>]``: one OpenID Connect provider."""

    label: str
    """The button text: ``Company SSO``."""
    discovery_url: str
    """``https://…/.well-known/openid-configuration``."""
    client_id: str
    client_secret: str = ""
    """Empty for a public client (then only PKCE protects the code exchange)."""
    scope: str = "openid email profile"


class OIDCAuthSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[plugins.oidc_auth]``."""

    providers: dict[str, OIDCProviderSettings] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        for provider_id, provider in self.providers.items():
            if not PROVIDER_ID.fullmatch(provider_id):
                raise ValueError(
                    f"provider id `{provider_id}` (in `[plugins.oidc_auth.providers.{provider_id}]`) "
                    "may only use lowercase letters, digits, `-` and `_`: it is part of the "
                    "callback URL /auth/<id>/callback"
                )
            where = f"plugins.oidc_auth.providers.{provider_id}"
            if not provider.label.strip():
                raise ValueError(f"`{where}.label` must not be empty (it is the button text)")
            if not provider.discovery_url.startswith(("https://", "http://")):
                raise ValueError(
                    f"`{where}.discovery_url` must be an https:// URL ending in "
                    "/.well-known/openid-configuration"
                )
            if "openid" not in provider.scope.split():
                raise ValueError(f"`{where}.scope` must include `openid`")


@hookimpl
def register_settings() -> dict[str, type[msgspec.Struct]]:
    return {PLUGIN_ID: OIDCAuthSettings}


@hookimpl
def register_auth_providers(site: Site) -> list[AuthProvider]:
    settings: OIDCAuthSettings = site.plugin_settings(PLUGIN_ID)
    return [
        OIDCProvider(
            id=provider_id,
            label=provider.label,
            discovery_url=provider.discovery_url,
            client_id=provider.client_id,
            client_secret=provider.client_secret,
            scope=provider.scope,
        )
        for provider_id, provider in settings.providers.items()
    ]

"""Built-in plugin: sign in with Google (OpenID Connect).

Configure it with an OAuth client of type "Web application" (Google Cloud console → APIs &
Services → Credentials; authorized redirect URI ``<site.base_url>/auth/google/callback``)::

    [plugins.google_auth]
    client_id = "1234567890-abc.apps.googleusercontent.com"
    client_secret = "…"

Without both values the plugin offers no provider.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from mercato import hookimpl
from mercato.core.security.oidc import OIDCProvider

if TYPE_CHECKING:
    from mercato.core.security.providers import AuthProvider
    from mercato.core.site import Site

PLUGIN_ID = "google_auth"


class GoogleAuthSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[plugins.google_auth]``."""

    client_id: str = ""
    """The OAuth client id. Empty: Google log-in is off."""
    client_secret: str = ""
    """The OAuth client secret. Empty: Google log-in is off."""
    discovery_url: str = "https://accounts.google.com/.well-known/openid-configuration"


@hookimpl
def register_settings() -> dict[str, type[msgspec.Struct]]:
    return {PLUGIN_ID: GoogleAuthSettings}


@hookimpl
def register_auth_providers(site: Site) -> list[AuthProvider]:
    settings: GoogleAuthSettings = site.plugin_settings(PLUGIN_ID)
    if not (settings.client_id and settings.client_secret):
        return []
    return [
        OIDCProvider(
            id="google",
            label="Google",
            discovery_url=settings.discovery_url,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            # Google documents both forms of its issuer in id_tokens.
            extra_issuers=("accounts.google.com",),
        )
    ]

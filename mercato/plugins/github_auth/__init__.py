"""Built-in plugin: sign in with GitHub.

Configure it with an OAuth App's credentials (GitHub → Settings → Developer settings →
OAuth Apps; callback URL ``<site.base_url>/auth/github/callback``)::

    [plugins.github_auth]
    client_id = "Iv1.0123456789abcdef"
    client_secret = "…"

Without both values the plugin offers no provider. The URLs may be pointed elsewhere
(GitHub Enterprise Server, or a test server).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from mercato import hookimpl
from mercato.plugins.github_auth.provider import GitHubProvider

if TYPE_CHECKING:
    from mercato.core.security.providers import AuthProvider
    from mercato.core.site import Site

PLUGIN_ID = "github_auth"


class GitHubAuthSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[plugins.github_auth]``."""

    client_id: str = ""
    """The OAuth App's client id. Empty: GitHub log-in is off."""
    client_secret: str = ""
    """The OAuth App's client secret. Empty: GitHub log-in is off."""
    authorize_url: str = "https://github.com/login/oauth/authorize"
    token_url: str = "https://github.com/login/oauth/access_token"
    api_url: str = "https://api.github.com"
    """REST API root (``https://<host>/api/v3`` on GitHub Enterprise Server)."""
    scope: str = "read:user user:email"


@hookimpl
def register_settings() -> dict[str, type[msgspec.Struct]]:
    return {PLUGIN_ID: GitHubAuthSettings}


@hookimpl
def register_auth_providers(site: Site) -> list[AuthProvider]:
    settings: GitHubAuthSettings = site.plugin_settings(PLUGIN_ID)
    if not (settings.client_id and settings.client_secret):
        return []
    return [GitHubProvider(settings)]

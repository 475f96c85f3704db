"""Signing in with GitHub: OAuth2 authorization code with PKCE, then the REST API for the
profile and the e-mail addresses.

GitHub is not an OpenID Connect provider (no ``id_token``), so who signed in is whatever
``GET /user`` answers with the access token; the address comes from ``GET /user/emails``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import structlog
from authlib.integrations.httpx_client import AsyncOAuth2Client

from mercato.core.security.oidc import (
    HTTP_TIMEOUT,
    callback_code,
    callback_error,
    get_json,
    provider_http_errors,
    unverified_message,
)
from mercato.core.security.providers import ExternalIdentity, ProviderError

if TYPE_CHECKING:
    from mercato.plugins.github_auth import GitHubAuthSettings

log = structlog.get_logger("mercato.auth")

_API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}


class GitHubProvider:
    """The ``github`` log-in provider."""

    id = "github"
    label = "GitHub"

    def __init__(self, settings: GitHubAuthSettings, *, timeout: float = HTTP_TIMEOUT) -> None:
        self.settings = settings
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"GitHubProvider(authorize_url={self.settings.authorize_url!r})"

    async def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        """GitHub's authorize URL with PKCE S256 and ``state`` (GitHub has no ``nonce``)."""
        async with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                self.settings.authorize_url, state=state, code_verifier=code_verifier
            )
        return str(url)

    async def complete(
        self, *, redirect_uri: str, params: Mapping[str, str], nonce: str, code_verifier: str
    ) -> ExternalIdentity:
        """Exchange the code, then read the profile and the primary verified address."""
        error = callback_error(self.id, self.label, params)
        if error is not None:
            raise error
        code = callback_code(self.label, params)
        api = self.settings.api_url.rstrip("/")
        async with self._client(redirect_uri) as client:
            with provider_http_errors(self.id, self.label, "token"):
                # Authlib sends ``Accept: application/json``, so GitHub answers JSON (errors too).
                await client.fetch_token(
                    self.settings.token_url, grant_type="authorization_code", code=code,
                    code_verifier=code_verifier,
                )
            with provider_http_errors(self.id, self.label, "user"):
                user = await get_json(client, f"{api}/user", headers=_API_HEADERS)
            emails = await self._emails(client, f"{api}/user/emails")
        if not isinstance(user, dict) or not isinstance(user.get("id"), int | str) or not user["id"]:
            log.warning("GitHub /user answer has no id", provider=self.id)
            raise ProviderError(unverified_message(self.label))
        email, verified = _pick_email(emails, user)
        name, login = user.get("name"), user.get("login")
        display = next((v for v in (name, login) if isinstance(v, str) and v.strip()), str(user["id"]))
        avatar, html_url = user.get("avatar_url"), user.get("html_url")
        return ExternalIdentity(
            provider=self.id,
            subject=str(user["id"]),
            email=email,
            email_verified=verified,
            display_name=display.strip(),
            avatar_url=avatar if isinstance(avatar, str) and avatar else None,
            profile_url=html_url if isinstance(html_url, str) and html_url else None,
        )

    async def _emails(self, client: AsyncOAuth2Client, url: str) -> list[Any]:
        """The addresses of ``/user/emails``; ``[]`` when the token may not read them."""
        with provider_http_errors(self.id, self.label, "emails"):
            response = await client.get(url, headers=_API_HEADERS)
            if response.status_code in (403, 404):
                return []  # the scope `user:email` was not granted: fall back to the public address
            response.raise_for_status()
            emails = response.json()
        return emails if isinstance(emails, list) else []

    def _client(self, redirect_uri: str) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.settings.client_id,
            client_secret=self.settings.client_secret,
            token_endpoint_auth_method="client_secret_post",
            scope=self.settings.scope,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=self.timeout,
        )


def _pick_email(emails: list[Any], user: Mapping[str, Any]) -> tuple[str | None, bool]:
    """The primary verified address; else the primary one, unverified; else the public one."""
    rows = [row for row in emails if isinstance(row, dict) and isinstance(row.get("email"), str)]
    for row in rows:
        if row.get("primary") is True and row.get("verified") is True:
            return row["email"], True
    for row in rows:
        if row.get("primary") is True:
            return row["email"], False
    public = user.get("email")
    return (public, False) if isinstance(public, str) and "@" in public else (None, False)

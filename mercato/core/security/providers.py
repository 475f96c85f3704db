"""The protocol an external log-in provider (OAuth2 / OpenID Connect) implements.

The core owns the browser round trip: it makes ``state``, ``nonce`` and the PKCE
``code_verifier``, keeps them in a short-lived signed cookie, checks ``state`` on the way
back, and links or creates the account. A provider only turns those values into an
authorization URL, and the callback's query parameters into an :class:`ExternalIdentity`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class ProviderError(Exception):
    """The provider refused, failed or answered something we cannot trust.

    ``message`` is shown to the person signing in, so it says what happened in plain words
    (never a token or a stack trace).
    """

    def __init__(self, message: str, *, unavailable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.unavailable = unavailable
        """True when the provider could not be reached (down, timed out)."""


@dataclass(frozen=True, slots=True)
class ExternalIdentity:
    """Who the provider says signed in."""

    provider: str
    """The provider's id (``github``, ``google``, ``oidc``…)."""
    subject: str
    """The provider's stable id for this person (``sub`` claim, GitHub user id)."""
    email: str | None
    email_verified: bool
    """Only a verified address may be linked to an existing account."""
    display_name: str
    avatar_url: str | None = None
    profile_url: str | None = None


@runtime_checkable
class AuthProvider(Protocol):
    """An external log-in method, returned from ``register_auth_providers``."""

    id: str
    """URL-safe id, unique on the site; the callback is ``/auth/<id>/callback``."""
    label: str
    """Button text: ``GitHub``, ``Google``, ``Company SSO``."""

    async def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        """The provider URL to send the browser to (with PKCE S256 and, for OIDC, ``nonce``).
        Raise :class:`ProviderError` (``unavailable=True``) when discovery fails."""
        ...

    async def complete(
        self, *, redirect_uri: str, params: Mapping[str, str], nonce: str, code_verifier: str
    ) -> ExternalIdentity:
        """Exchange the callback's ``code`` for tokens and return who signed in. ``state`` is
        already checked. Raise :class:`ProviderError` when the provider answered with an
        error, is unreachable, or its tokens fail validation (``nonce``, signature, audience)."""
        ...

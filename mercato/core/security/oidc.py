"""A generic OpenID Connect log-in provider, and the error handling every OAuth2 provider shares.

:class:`OIDCProvider` implements :class:`~mercato.core.security.providers.AuthProvider` for
any OpenID Connect provider that publishes a discovery document (Google, Microsoft Entra,
Keycloak, Authentik, GitLab…): authorization code flow with PKCE S256 and ``nonce``; the
``id_token`` is checked against the provider's JWKS (signature, ``iss``, ``aud``/``azp``,
``exp``/``iat``, ``nonce``). It lives in the kernel so built-in plugins (``google_auth``,
``oidc_auth``) share it without importing each other.

Every HTTP call has a timeout. A provider that cannot be reached, times out or answers 5xx
becomes ``ProviderError(unavailable=True)``; one that refuses or answers something that does
not verify becomes a plain ``ProviderError``. Messages name the provider's label and never
carry a token, code or secret; neither do log lines.
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import httpx2
import structlog
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from mercato.core.security.providers import ExternalIdentity, ProviderError

log = structlog.get_logger("mercato.auth")

HTTP_TIMEOUT = 10.0
"""Seconds any single call to a provider may take."""
SAFE_ID_TOKEN_ALGORITHMS = frozenset({"RS256", "ES256", "PS256"})
"""Asymmetric algorithms an ``id_token`` may be signed with (never ``none``, never HS*)."""

_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


# ---------------------------------------------------------------------------
# Messages and error mapping shared by the OAuth2 providers
# ---------------------------------------------------------------------------


def unavailable_message(label: str) -> str:
    """Shown when the provider cannot be reached."""
    return f"{label} is not answering right now. Try again in a few minutes, or sign in another way."


def unverified_message(label: str) -> str:
    """Shown when the provider's answer fails validation (signature, nonce, audience…)."""
    return f"The answer from {label} could not be verified. Please try again."


def refused_message(label: str) -> str:
    """Shown when the provider refused to exchange the code (expired, reused, PKCE mismatch)."""
    return f"{label} did not accept the sign-in. Please try again."


def _safe_code(value: object) -> str:
    """An error code from the provider, fit for a log line (it may come from the browser)."""
    text = str(value)
    return text if _ERROR_CODE.match(text) else "(unreadable)"


def callback_error(provider_id: str, label: str, params: Mapping[str, str]) -> ProviderError | None:
    """The :class:`ProviderError` for a callback that carries ``error=…``, else ``None``.

    ``error_description`` is never shown: anyone can put text in a callback URL.
    """
    error = params.get("error")
    if not error:
        return None
    log.info("provider answered with an error", provider=provider_id, error=_safe_code(error))
    if error == "access_denied":
        return ProviderError(f"You cancelled signing in with {label}.")
    if error in {"temporarily_unavailable", "server_error"}:
        return ProviderError(unavailable_message(label), unavailable=True)
    return ProviderError(f"{label} could not sign you in. Please try again, or sign in another way.")


def callback_code(label: str, params: Mapping[str, str]) -> str:
    """The ``code`` of a callback, or a :class:`ProviderError` when it has none."""
    code = params.get("code")
    if not code:
        raise ProviderError(f"{label} sent back an incomplete answer. Please try again.")
    return code


@contextmanager
def provider_http_errors(provider_id: str, label: str, step: str) -> Iterator[None]:
    """Turn what an HTTP call to a provider may raise into :class:`ProviderError`.

    Network errors, timeouts, 429 and 5xx answers are ``unavailable``; an OAuth error
    answer (``invalid_grant``…) or another 4xx is a refusal. ``step`` names the call in
    the log line (``token``, ``discovery``…).
    """
    try:
        yield
    except ProviderError:
        raise
    except httpx2.TransportError as exc:  # connect errors, timeouts, protocol errors
        log.warning("provider unreachable", provider=provider_id, step=step, error=type(exc).__name__)
        raise ProviderError(unavailable_message(label), unavailable=True) from exc
    except httpx2.HTTPStatusError as exc:
        status = exc.response.status_code
        log.warning("provider answered an HTTP error", provider=provider_id, step=step, status=status)
        if status >= 500 or status == 429:
            raise ProviderError(unavailable_message(label), unavailable=True) from exc
        raise ProviderError(refused_message(label)) from exc
    except OAuthError as exc:
        log.warning("provider refused", provider=provider_id, step=step, error=_safe_code(exc.error))
        raise ProviderError(refused_message(label)) from exc
    except ValueError as exc:  # not JSON (a proxy's error page), or JSON of the wrong shape
        log.warning("provider answered something unreadable", provider=provider_id, step=step)
        raise ProviderError(unavailable_message(label), unavailable=True) from exc


async def get_json(client: httpx2.AsyncClient, url: str, **kwargs: Any) -> Any:
    """``GET url`` and return the decoded JSON; raises for non-2xx answers."""
    headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
    response = await client.get(url, headers=headers, **kwargs)
    response.raise_for_status()
    return response.json()


# ---------------------------------------------------------------------------
# OpenID Connect
# ---------------------------------------------------------------------------

_REQUIRED_DISCOVERY_KEYS = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")

# Discovery documents and key sets are public, so they are cached per process by URL rather
# than per provider object: a plugin may build its providers anew on every call of
# ``register_auth_providers``. Values are (monotonic time fetched, document).
_discovery_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_jwks_cache: dict[str, tuple[float, KeySet]] = {}


def clear_caches() -> None:
    """Forget every cached discovery document and JWKS (for tests, or after a provider
    changed its configuration)."""
    _discovery_cache.clear()
    _jwks_cache.clear()


class OIDCProvider:
    """An OpenID Connect provider configured from its discovery document.

    The discovery document and the JWKS are fetched on first use and kept for
    ``cache_seconds`` (in a per-process cache keyed by URL, shared by providers built from
    the same settings); an ``id_token`` signed with a key id the cached JWKS does not know
    makes it fetch the JWKS again, once (key rotation). ``extra_issuers`` are accepted as
    ``iss`` besides the discovery document's ``issuer`` (Google also uses the bare host).
    """

    def __init__(
        self,
        *,
        id: str,
        label: str,
        discovery_url: str,
        client_id: str,
        client_secret: str = "",
        scope: str = "openid email profile",
        extra_issuers: Sequence[str] = (),
        timeout: float = HTTP_TIMEOUT,
        cache_seconds: float = 3600.0,
        leeway_seconds: int = 60,
    ) -> None:
        self.id = id
        self.label = label
        self.discovery_url = discovery_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self.extra_issuers = tuple(extra_issuers)
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self.leeway_seconds = leeway_seconds

    def __repr__(self) -> str:
        return f"OIDCProvider(id={self.id!r}, discovery_url={self.discovery_url!r})"

    # -- AuthProvider -----------------------------------------------------
    async def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        """The provider's authorization endpoint with ``response_type=code``, PKCE S256,
        ``nonce`` and ``state``."""
        discovery = await self.discovery()
        async with self._oauth_client(redirect_uri, discovery) as client:
            url, _ = client.create_authorization_url(
                discovery["authorization_endpoint"], state=state, code_verifier=code_verifier,
                nonce=nonce,
            )
        return str(url)

    async def complete(
        self, *, redirect_uri: str, params: Mapping[str, str], nonce: str, code_verifier: str
    ) -> ExternalIdentity:
        """Exchange the code, verify the ``id_token`` and return who signed in."""
        error = callback_error(self.id, self.label, params)
        if error is not None:
            raise error
        code = callback_code(self.label, params)
        discovery = await self.discovery()
        async with self._oauth_client(redirect_uri, discovery) as client:
            with provider_http_errors(self.id, self.label, "token"):
                token = await client.fetch_token(
                    discovery["token_endpoint"], grant_type="authorization_code", code=code,
                    code_verifier=code_verifier,
                )
            id_token = token.get("id_token")
            if not isinstance(id_token, str):
                log.warning("token answer has no id_token", provider=self.id)
                raise ProviderError(unverified_message(self.label))
            claims = await self._verify_id_token(id_token, discovery, nonce)
            userinfo_url = discovery.get("userinfo_endpoint")
            if not claims.get("email") and isinstance(userinfo_url, str) and userinfo_url:
                claims = await self._merge_userinfo(client, userinfo_url, claims)
        return self._identity(claims)

    # -- discovery and keys -----------------------------------------------
    async def discovery(self) -> dict[str, Any]:
        """The provider's discovery document (cached)."""
        cached = _discovery_cache.get(self.discovery_url)
        if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        async with self._http() as http:
            with provider_http_errors(self.id, self.label, "discovery"):
                document = await get_json(http, self.discovery_url)
        if not isinstance(document, dict) or not all(
            isinstance(document.get(key), str) and document[key] for key in _REQUIRED_DISCOVERY_KEYS
        ):
            log.warning("discovery document is incomplete", provider=self.id, url=self.discovery_url)
            raise ProviderError(unavailable_message(self.label), unavailable=True)
        _discovery_cache[self.discovery_url] = (time.monotonic(), document)
        return document

    async def _keys(self, jwks_uri: str, *, refresh: bool = False) -> KeySet:
        cached = _jwks_cache.get(jwks_uri)
        if cached is not None and not refresh and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        async with self._http() as http:
            with provider_http_errors(self.id, self.label, "jwks"):
                document = await get_json(http, jwks_uri)
                if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
                    raise ValueError("not a JWK set")
                # Symmetric keys have no business in a public key set: drop them.
                public = [
                    key for key in document["keys"] if isinstance(key, dict) and key.get("kty") != "oct"
                ]
                try:
                    keys = KeySet.import_key_set({"keys": public})
                except (JoseError, KeyError, TypeError) as exc:
                    raise ValueError("unusable JWK set") from exc
        _jwks_cache[jwks_uri] = (time.monotonic(), keys)
        return keys

    def allowed_algorithms(self, discovery: Mapping[str, Any]) -> list[str]:
        """The ``id_token`` algorithms accepted: the provider's, within the safe list."""
        advertised = discovery.get("id_token_signing_alg_values_supported") or ["RS256"]
        return sorted(SAFE_ID_TOKEN_ALGORITHMS.intersection(advertised))

    # -- id_token ---------------------------------------------------------
    async def _verify_id_token(
        self, id_token: str, discovery: Mapping[str, Any], nonce: str
    ) -> dict[str, Any]:
        def reject(reason: str) -> ProviderError:
            log.warning("id_token rejected", provider=self.id, reason=reason)
            return ProviderError(unverified_message(self.label))

        algorithms = self.allowed_algorithms(discovery)
        try:
            header = extract_compact(id_token.encode("ascii")).headers()
        except (JoseError, ValueError, UnicodeError):
            raise reject("malformed") from None
        if header.get("alg") not in algorithms:
            raise reject(f"algorithm {_safe_code(header.get('alg'))} not allowed")
        kid = header.get("kid")
        keys = await self._keys(discovery["jwks_uri"])
        if not _has_key(keys, kid):
            keys = await self._keys(discovery["jwks_uri"], refresh=True)
            if not _has_key(keys, kid):
                raise reject("unknown signing key")
        try:
            claims = jwt.decode(id_token, keys, algorithms=algorithms).claims
        except (JoseError, ValueError):
            raise reject("bad signature") from None

        issuers: list[str | int | bool] = [discovery["issuer"], *self.extra_issuers]
        registry = jwt.JWTClaimsRegistry(
            leeway=self.leeway_seconds,
            iss={"essential": True, "values": issuers},
            sub={"essential": True},
            aud={"essential": True, "value": self.client_id},
            exp={"essential": True},
            iat={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise reject(f"claim check failed: {type(exc).__name__}") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        azp = claims.get("azp")
        if azp is not None and azp != self.client_id:
            raise reject("azp is another client")
        if len(audiences) > 1 and azp is None:
            raise reject("several audiences and no azp")
        received = claims.get("nonce")
        if not isinstance(received, str) or not hmac.compare_digest(
            received.encode("utf-8"), nonce.encode("utf-8")
        ):
            raise reject("nonce mismatch")
        return dict(claims)

    async def _merge_userinfo(
        self, client: AsyncOAuth2Client, url: str, claims: dict[str, Any]
    ) -> dict[str, Any]:
        with provider_http_errors(self.id, self.label, "userinfo"):
            info = await get_json(client, url)
        if not isinstance(info, dict) or info.get("sub") != claims["sub"]:
            # OIDC Core 5.3.2: a userinfo answer for another subject must not be used.
            log.warning("userinfo answer ignored: subject differs", provider=self.id)
            return claims
        merged = dict(claims)
        for key in ("email", "email_verified", "name", "preferred_username", "picture", "profile"):
            if merged.get(key) in (None, "") and key in info:
                merged[key] = info[key]
        return merged

    def _identity(self, claims: Mapping[str, Any]) -> ExternalIdentity:
        email = claims.get("email")
        email = email if isinstance(email, str) and "@" in email else None
        verified = claims.get("email_verified") in (True, "true")
        given = " ".join(
            str(claims[key]) for key in ("given_name", "family_name") if isinstance(claims.get(key), str)
        )
        display_name = next(
            (value for value in (claims.get("name"), claims.get("preferred_username"), given, email)
             if isinstance(value, str) and value.strip()),
            str(claims["sub"]),
        )
        picture, profile = claims.get("picture"), claims.get("profile")
        return ExternalIdentity(
            provider=self.id,
            subject=str(claims["sub"]),
            email=email,
            email_verified=bool(email and verified),
            display_name=display_name.strip(),
            avatar_url=picture if isinstance(picture, str) and picture else None,
            profile_url=profile if isinstance(profile, str) and profile else None,
        )

    # -- HTTP clients -----------------------------------------------------
    def _http(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(timeout=self.timeout)

    def _oauth_client(self, redirect_uri: str, discovery: Mapping[str, Any]) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.client_id,
            client_secret=self._client_secret or None,
            token_endpoint_auth_method=self._token_auth_method(discovery),
            scope=self.scope,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=self.timeout,
        )

    def _token_auth_method(self, discovery: Mapping[str, Any]) -> str:
        if not self._client_secret:
            return "none"
        # OIDC Discovery: when absent, the default is client_secret_basic.
        supported = discovery.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if "client_secret_basic" in supported:
            return "client_secret_basic"
        if "client_secret_post" in supported:
            return "client_secret_post"
        return "client_secret_basic"


def _has_key(keys: KeySet, kid: str | None) -> bool:
    if kid is None:
        return len(keys.keys) == 1
    return any(key.kid == kid for key in keys.keys)

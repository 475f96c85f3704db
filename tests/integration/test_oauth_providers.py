"""The GitHub, Google and generic OpenID Connect log-in providers, driven directly against a
real Authlib authorization server on loopback (tests/oauth_server.py).

The browser round trip through mercato's own ``/auth/<id>/callback`` is tested elsewhere;
here a test plays the browser with httpx: it follows the authorization URL (no automatic
redirects), reads ``code`` and ``state`` from the ``Location`` and hands them to
``provider.complete``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from mercato import hookimpl
from mercato.core.plugins import BUILTIN_PLUGINS, Plugins, build_plugin_manager, builtin_id
from mercato.core.security.oidc import OIDCProvider
from mercato.core.security.providers import AuthProvider, ExternalIdentity, ProviderError
from mercato.core.settings import ConfigError, load_settings
from tests.oauth_server import CLIENTS, OAuthTestServer, TestUser, new_pkce_values, unused_port

OAUTH_PLUGINS = (
    "mercato.plugins.github_auth",
    "mercato.plugins.google_auth",
    "mercato.plugins.oidc_auth",
)
ALL = ["github", "google", "oidc"]
OIDC = ["google", "oidc"]
CLIENT_OF = {"github": "github-client", "google": "google-client", "company": "oidc-client"}
"""Provider id → the test server's client it is configured with."""
UNAVAILABLE = "is not answering right now"
UNVERIFIED = "could not be verified"
REFUSED = "did not accept the sign-in"


@pytest.fixture(autouse=True)
def server(fresh_oauth_server: OAuthTestServer) -> OAuthTestServer:
    return fresh_oauth_server


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def load_providers(tmp_path: Path, plugins: dict[str, Any]) -> list[AuthProvider]:
    """The providers the three plugins return for ``[plugins.*]`` tables ``plugins``."""
    settings = load_settings(
        tmp_path, environ={}, overrides={"plugins": {"load_entry_points": False, **plugins}}
    )
    manager = Plugins(build_plugin_manager(settings, builtins=OAUTH_PLUGINS))
    manager.validate_plugin_settings(settings)
    site = SimpleNamespace(settings=settings, plugin_settings=manager.settings_for)
    return manager.auth_providers(site)


def plugin_tables(kind: str, *, discovery_url: str, github_urls: dict[str, str]) -> dict[str, Any]:
    if kind == "github":
        client = CLIENTS["github-client"]
        return {"github_auth": {"client_id": client.client_id, "client_secret": client.client_secret,
                                **github_urls}}
    if kind == "google":
        client = CLIENTS["google-client"]
        return {"google_auth": {"client_id": client.client_id, "client_secret": client.client_secret,
                                "discovery_url": discovery_url}}
    client = CLIENTS["oidc-client"]
    return {"oidc_auth": {"providers": {"company": {
        "label": "Company SSO", "discovery_url": discovery_url,
        "client_id": client.client_id, "client_secret": client.client_secret,
    }}}}


def make_provider(kind: str, server: OAuthTestServer, tmp_path: Path) -> AuthProvider:
    tables = plugin_tables(kind, discovery_url=server.discovery_url, github_urls=server.github_urls)
    (provider,) = load_providers(tmp_path, tables)
    return provider


def unreachable_provider(kind: str, tmp_path: Path) -> AuthProvider:
    base = f"http://127.0.0.1:{unused_port()}"
    tables = plugin_tables(
        kind, discovery_url=f"{base}/.well-known/openid-configuration",
        github_urls={"authorize_url": f"{base}/github/login/oauth/authorize",
                     "token_url": f"{base}/github/login/oauth/access_token",
                     "api_url": f"{base}/github/api"},
    )
    (provider,) = load_providers(tmp_path, tables)
    return provider


@dataclass
class Attempt:
    """One sign-in: what the core would keep in its cookie, and the callback's parameters."""

    provider: AuthProvider
    redirect_uri: str
    state: str
    nonce: str
    code_verifier: str
    authorization_url: str
    params: dict[str, str]

    async def complete(self, **overrides: Any) -> ExternalIdentity:
        arguments: dict[str, Any] = {
            "redirect_uri": self.redirect_uri, "params": self.params, "nonce": self.nonce,
            "code_verifier": self.code_verifier, **overrides,
        }
        return await self.provider.complete(**arguments)


def query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


async def start_sign_in(provider: AuthProvider) -> Attempt:
    """Ask for the authorization URL and follow it like a browser, up to the callback."""
    values = new_pkce_values()
    redirect_uri = f"http://127.0.0.1:9/auth/{provider.id}/callback"
    url = await provider.authorization_url(redirect_uri=redirect_uri, **values)
    async with httpx.AsyncClient(follow_redirects=False, timeout=10) as browser:
        response = await browser.get(url)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(redirect_uri + "?")
    return Attempt(provider, redirect_uri, values["state"], values["nonce"], values["code_verifier"],
                   url, query(location))


@pytest.fixture(params=ALL)
def provider(request: pytest.FixtureRequest, server: OAuthTestServer, tmp_path: Path) -> AuthProvider:
    return make_provider(request.param, server, tmp_path)


@pytest.fixture(params=OIDC)
def oidc_provider(request: pytest.FixtureRequest, server: OAuthTestServer, tmp_path: Path) -> AuthProvider:
    return make_provider(request.param, server, tmp_path)


# ---------------------------------------------------------------------------
# Happy paths
# ---------------------------------------------------------------------------


async def test_sign_in_returns_the_configured_user(provider: AuthProvider, server: OAuthTestServer) -> None:
    server.next_user = TestUser(sub="sub-42", email="grace@example.com", name="Grace Hopper",
                                picture="https://img.example.com/grace.png", login="grace", github_id=42)
    assert isinstance(provider, AuthProvider)

    attempt = await start_sign_in(provider)

    sent = query(attempt.authorization_url)
    assert attempt.params["state"] == attempt.state
    assert attempt.params["code"]
    assert sent["code_challenge_method"] == "S256"
    assert sent["code_challenge"] == create_s256_code_challenge(attempt.code_verifier)
    assert server.last_authorize_params["code_challenge"] == sent["code_challenge"]
    assert sent["response_type"] == "code"
    assert "code_verifier" not in sent

    identity = await attempt.complete()

    assert identity.provider == provider.id
    assert identity.email == "grace@example.com"
    assert identity.email_verified is True
    assert identity.display_name == "Grace Hopper"
    assert identity.avatar_url == "https://img.example.com/grace.png"
    if provider.id == "github":
        assert (provider.label, identity.subject) == ("GitHub", "42")
        assert identity.profile_url == "https://github.com/grace"
        assert "nonce" not in sent
        assert set(sent["scope"].split()) == {"read:user", "user:email"}
    else:
        assert identity.subject == "sub-42"
        assert sent["nonce"] == attempt.nonce
        assert set(sent["scope"].split()) == {"openid", "email", "profile"}
        expected = ("google", "Google") if provider.id == "google" else ("company", "Company SSO")
        assert (provider.id, provider.label) == expected


async def test_unverified_email_is_reported_unverified(
    provider: AuthProvider, server: OAuthTestServer
) -> None:
    server.next_user = TestUser(email="new@example.com", email_verified=False)
    identity = await (await start_sign_in(provider)).complete()
    # GitHub: the primary address is unverified, a verified noreply address exists; the
    # primary one is returned, flagged unverified.
    assert (identity.email, identity.email_verified) == ("new@example.com", False)


async def test_github_display_name_falls_back_to_login(server: OAuthTestServer, tmp_path: Path) -> None:
    server.next_user = TestUser(name="", login="octocat", github_emails=())
    identity = await (await start_sign_in(make_provider("github", server, tmp_path))).complete()
    assert identity.display_name == "octocat"
    assert (identity.email, identity.email_verified) == (None, False)


async def test_github_prefers_the_primary_verified_address(server: OAuthTestServer, tmp_path: Path) -> None:
    server.next_user = TestUser(github_emails=(
        {"email": "old@example.com", "primary": False, "verified": True},
        {"email": "main@example.com", "primary": True, "verified": True},
    ))
    identity = await (await start_sign_in(make_provider("github", server, tmp_path))).complete()
    assert (identity.email, identity.email_verified) == ("main@example.com", True)


async def test_email_missing_from_id_token_comes_from_userinfo(
    oidc_provider: AuthProvider, server: OAuthTestServer
) -> None:
    server.omit_email_in_id_token = True
    server.next_user = TestUser(email="info@example.com", email_verified=True)
    identity = await (await start_sign_in(oidc_provider)).complete()
    assert (identity.email, identity.email_verified) == ("info@example.com", True)


@pytest.mark.parametrize("methods", [["client_secret_post"], ["client_secret_basic"]])
async def test_token_endpoint_auth_method_follows_discovery(
    oidc_provider: AuthProvider, server: OAuthTestServer, methods: list[str]
) -> None:
    server.token_auth_methods = methods
    identity = await (await start_sign_in(oidc_provider)).complete()
    assert identity.subject == "user-1"


@pytest.mark.parametrize("kind", OIDC)
async def test_discovery_and_keys_are_cached(kind: str, server: OAuthTestServer, tmp_path: Path) -> None:
    await (await start_sign_in(make_provider(kind, server, tmp_path))).complete()
    # The core may ask the plugin for its providers on every request: new objects built
    # from the same settings still share the cache.
    await (await start_sign_in(make_provider(kind, server, tmp_path))).complete()
    assert server.discovery_requests == 1
    assert server.jwks_requests == 1


async def test_rotated_signing_key_is_fetched_once(
    oidc_provider: AuthProvider, server: OAuthTestServer
) -> None:
    await (await start_sign_in(oidc_provider)).complete()
    server.rotate_key()
    await (await start_sign_in(oidc_provider)).complete()  # unknown kid: JWKS fetched again
    await (await start_sign_in(oidc_provider)).complete()
    assert server.jwks_requests == 2


# ---------------------------------------------------------------------------
# The provider says no
# ---------------------------------------------------------------------------


async def test_access_denied_is_a_provider_error(provider: AuthProvider, server: OAuthTestServer) -> None:
    server.deny = True
    attempt = await start_sign_in(provider)
    assert attempt.params["error"] == "access_denied"
    assert attempt.params["state"] == attempt.state

    with pytest.raises(ProviderError) as caught:
        await attempt.complete()

    assert caught.value.unavailable is False
    assert caught.value.message == f"You cancelled signing in with {provider.label}."


async def test_callback_without_code_is_a_provider_error(provider: AuthProvider) -> None:
    with pytest.raises(ProviderError, match="incomplete answer") as caught:
        await provider.complete(redirect_uri="http://127.0.0.1:9/cb", params={"state": "s"},
                                nonce="n", code_verifier="v" * 43)
    assert caught.value.unavailable is False


async def test_replayed_code_is_refused(provider: AuthProvider) -> None:
    attempt = await start_sign_in(provider)
    await attempt.complete()

    with pytest.raises(ProviderError, match=REFUSED) as caught:
        await attempt.complete()
    assert caught.value.unavailable is False


async def test_pkce_verifier_mismatch_is_refused(provider: AuthProvider) -> None:
    attempt = await start_sign_in(provider)
    with pytest.raises(ProviderError, match=REFUSED) as caught:
        await attempt.complete(code_verifier=new_pkce_values()["code_verifier"])
    assert caught.value.unavailable is False


# ---------------------------------------------------------------------------
# id_token validation
# ---------------------------------------------------------------------------


async def test_wrong_nonce_in_id_token_is_rejected(
    oidc_provider: AuthProvider, server: OAuthTestServer
) -> None:
    server.wrong_nonce = True
    attempt = await start_sign_in(oidc_provider)
    with pytest.raises(ProviderError, match=UNVERIFIED) as caught:
        await attempt.complete()
    assert caught.value.unavailable is False
    assert caught.value.message == (
        f"The answer from {oidc_provider.label} could not be verified. Please try again."
    )


async def test_nonce_other_than_the_expected_one_is_rejected(oidc_provider: AuthProvider) -> None:
    attempt = await start_sign_in(oidc_provider)
    with pytest.raises(ProviderError, match=UNVERIFIED):
        await attempt.complete(nonce=new_pkce_values()["nonce"])


async def test_tampered_id_token_is_rejected(oidc_provider: AuthProvider, server: OAuthTestServer) -> None:
    server.tamper_id_token = True
    attempt = await start_sign_in(oidc_provider)
    with pytest.raises(ProviderError, match=UNVERIFIED):
        await attempt.complete()


async def test_id_token_signed_by_an_unknown_key_is_rejected(
    oidc_provider: AuthProvider, server: OAuthTestServer
) -> None:
    server.sign_with_unknown_key = True
    attempt = await start_sign_in(oidc_provider)
    with pytest.raises(ProviderError, match=UNVERIFIED):
        await attempt.complete()
    assert server.jwks_requests == 2  # the cached set, then one refetch


async def test_hs256_id_token_is_rejected_even_when_advertised(
    oidc_provider: AuthProvider, server: OAuthTestServer
) -> None:
    server.id_token_alg = "HS256"  # signed with the client secret; discovery lists HS256
    attempt = await start_sign_in(oidc_provider)
    with pytest.raises(ProviderError, match=UNVERIFIED):
        await attempt.complete()


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"iss": "https://evil.example"}, id="issuer"),
        pytest.param({"aud": "someone-else"}, id="audience"),
        pytest.param({"aud": ["CLIENT", "someone-else"]}, id="several-audiences-no-azp"),
        pytest.param({"azp": "someone-else"}, id="azp"),
        pytest.param({"exp": int(time.time()) - 3600}, id="expired"),
        pytest.param({"iat": int(time.time()) + 3600}, id="issued-in-the-future"),
        pytest.param({"sub": ""}, id="empty-subject"),
    ],
)
async def test_id_token_claims_are_checked(
    oidc_provider: AuthProvider, server: OAuthTestServer, claims: dict[str, Any]
) -> None:
    client_id = oidc_provider.client_id  # type: ignore[attr-defined]
    server.id_token_claims = {
        key: [client_id if item == "CLIENT" else item for item in value] if isinstance(value, list) else value
        for key, value in claims.items()
    }
    attempt = await start_sign_in(oidc_provider)
    with pytest.raises(ProviderError, match=UNVERIFIED):
        await attempt.complete()


async def test_several_audiences_with_our_azp_are_accepted(
    oidc_provider: AuthProvider, server: OAuthTestServer
) -> None:
    client_id = oidc_provider.client_id  # type: ignore[attr-defined]
    server.id_token_claims = {"aud": [client_id, "other"], "azp": client_id}
    identity = await (await start_sign_in(oidc_provider)).complete()
    assert identity.subject == "user-1"


# ---------------------------------------------------------------------------
# The provider is down
# ---------------------------------------------------------------------------


async def test_provider_down_at_the_callback_is_unavailable(
    provider: AuthProvider, server: OAuthTestServer
) -> None:
    attempt = await start_sign_in(provider)
    server.down = True
    with pytest.raises(ProviderError, match=UNAVAILABLE) as caught:
        await attempt.complete()
    assert caught.value.unavailable is True
    assert caught.value.message == (
        f"{provider.label} is not answering right now. Try again in a few minutes, or sign in another way."
    )


async def test_discovery_down_is_unavailable(oidc_provider: AuthProvider, server: OAuthTestServer) -> None:
    server.down = True
    values = new_pkce_values()
    with pytest.raises(ProviderError, match=UNAVAILABLE) as caught:
        await oidc_provider.authorization_url(redirect_uri="http://127.0.0.1:9/cb", **values)
    assert caught.value.unavailable is True


@pytest.mark.parametrize("kind", OIDC)
async def test_connection_refused_at_discovery_is_unavailable(kind: str, tmp_path: Path) -> None:
    provider = unreachable_provider(kind, tmp_path)
    with pytest.raises(ProviderError, match=UNAVAILABLE) as caught:
        await provider.authorization_url(redirect_uri="http://127.0.0.1:9/cb", **new_pkce_values())
    assert caught.value.unavailable is True


@pytest.mark.parametrize("kind", ALL)
async def test_connection_refused_at_the_callback_is_unavailable(kind: str, tmp_path: Path) -> None:
    provider = unreachable_provider(kind, tmp_path)
    values = new_pkce_values()
    with pytest.raises(ProviderError, match=UNAVAILABLE) as caught:
        await provider.complete(redirect_uri="http://127.0.0.1:9/cb",
                                params={"code": "abc", "state": values["state"]},
                                nonce=values["nonce"], code_verifier=values["code_verifier"])
    assert caught.value.unavailable is True


async def test_timeout_is_unavailable(provider: AuthProvider, server: OAuthTestServer) -> None:
    attempt = await start_sign_in(provider)
    provider.timeout = 0.2  # type: ignore[attr-defined]
    server.slow_seconds = 1.0
    with pytest.raises(ProviderError, match=UNAVAILABLE) as caught:
        await attempt.complete()
    assert caught.value.unavailable is True


async def test_temporarily_unavailable_callback_error(provider: AuthProvider) -> None:
    with pytest.raises(ProviderError, match=UNAVAILABLE) as caught:
        await provider.complete(redirect_uri="http://127.0.0.1:9/cb",
                                params={"error": "temporarily_unavailable", "state": "s"},
                                nonce="n", code_verifier="v" * 43)
    assert caught.value.unavailable is True


# ---------------------------------------------------------------------------
# Secrets stay out of messages and logs
# ---------------------------------------------------------------------------


async def test_no_secret_or_code_in_messages_or_logs(
    provider: AuthProvider, caplog: pytest.LogCaptureFixture
) -> None:
    secret = CLIENTS[CLIENT_OF[provider.id]].client_secret
    assert secret not in repr(provider)
    attempt = await start_sign_in(provider)
    await attempt.complete()
    caplog.clear()
    with caplog.at_level(logging.DEBUG), pytest.raises(ProviderError) as caught:
        await attempt.complete()  # replayed: refused, and logged
    ours = [record for record in caplog.records if record.name.startswith("mercato")]
    assert ours, "the refusal is logged"
    for text in [caught.value.message, *(record.getMessage() for record in ours)]:
        assert attempt.params["code"] not in text
        assert secret not in text
        assert attempt.code_verifier not in text


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------


def test_unconfigured_plugins_offer_no_provider(tmp_path: Path) -> None:
    assert load_providers(tmp_path, {}) == []
    assert load_providers(tmp_path, {"github_auth": {"client_id": "only-the-id"}}) == []
    assert load_providers(tmp_path, {"google_auth": {"client_secret": "only-the-secret"}}) == []
    assert load_providers(tmp_path, {"oidc_auth": {"providers": {}}}) == []


def test_several_oidc_providers(tmp_path: Path) -> None:
    entry = {"discovery_url": "https://sso.example.com/.well-known/openid-configuration",
             "client_id": "mercato", "client_secret": "s3cret"}
    providers = load_providers(tmp_path, {"oidc_auth": {"providers": {
        "staff": {"label": "Staff SSO", **entry},
        "partners-2": {"label": "Partners", "scope": "openid email", **entry},
    }}})
    assert [(p.id, p.label) for p in providers] == [("staff", "Staff SSO"), ("partners-2", "Partners")]
    assert all(isinstance(p, OIDCProvider) for p in providers)
    assert "s3cret" not in repr(providers)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        pytest.param({"Bad Id": {}}, r"provider id `Bad Id`.*lowercase letters, digits", id="id-with-space"),
        pytest.param({"Company": {}}, r"provider id `Company`", id="uppercase-id"),
        pytest.param({"ok": {"label": " "}}, r"`plugins\.oidc_auth\.providers\.ok\.label` must not be empty",
                     id="empty-label"),
        pytest.param({"ok": {"scope": "email"}}, r"must include `openid`", id="scope-without-openid"),
        pytest.param({"ok": {"discovery_url": "sso.example.com"}}, r"discovery_url", id="bad-url"),
    ],
)
def test_bad_oidc_provider_settings_are_config_errors(
    tmp_path: Path, table: dict[str, dict[str, str]], message: str
) -> None:
    base = {"label": "SSO", "discovery_url": "https://sso.example.com/.well-known/openid-configuration",
            "client_id": "mercato"}
    providers = {key: {**base, **value} for key, value in table.items()}
    with pytest.raises(ConfigError, match=message):
        load_providers(tmp_path, {"oidc_auth": {"providers": providers}})


def test_missing_oidc_field_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="plugins.oidc_auth"):
        load_providers(tmp_path, {"oidc_auth": {"providers": {"ok": {"label": "SSO"}}}})


def test_unknown_github_key_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key `plugins\.github_auth\.client_sercet`"):
        load_providers(tmp_path, {"github_auth": {"client_sercet": "x"}})


async def test_a_third_party_plugin_can_reuse_the_kernel_oidc_provider(
    server: OAuthTestServer, tmp_path: Path
) -> None:
    client = CLIENTS["oidc-client"]

    class TeamSSO:
        @hookimpl
        def register_auth_providers(self, site: Any) -> list[AuthProvider]:
            return [OIDCProvider(id="team", label="Team", discovery_url=server.discovery_url,
                                 client_id=client.client_id, client_secret=client.client_secret)]

    settings = load_settings(tmp_path, environ={}, overrides={"plugins": {"load_entry_points": False}})
    manager = Plugins(build_plugin_manager(settings, builtins=OAUTH_PLUGINS, extra=[("team_sso", TeamSSO())]))
    manager.validate_plugin_settings(settings)
    (provider,) = manager.auth_providers(SimpleNamespace(plugin_settings=manager.settings_for))

    identity = await (await start_sign_in(provider)).complete()

    assert (identity.provider, identity.subject) == ("team", "user-1")


def test_plugins_are_builtin() -> None:
    ids = {builtin_id(name) for name in BUILTIN_PLUGINS}
    assert {"github_auth", "google_auth", "oidc_auth"} <= ids
    assert set(OAUTH_PLUGINS) <= set(BUILTIN_PLUGINS)

"""A real OAuth2 / OpenID Connect authorization server for tests, on 127.0.0.1.

The protocol work is Authlib's server side: :class:`authlib.oauth2.rfc6749.AuthorizationServer`
with the authorization code grant, PKCE (:class:`~authlib.oauth2.rfc7636.CodeChallenge`) and
OpenID Connect (:class:`~authlib.oidc.core.grants.OpenIDCode`, which signs the ``id_token``
with an RS256 key made by joserfc at start). Authlib is framework-agnostic; the web layer
here is the standard library's ``http.server`` in a thread, bridged by implementing
``create_oauth2_request`` / ``create_json_request`` / ``handle_response`` (as Authlib's Flask
and Django integrations do).

Endpoints (base URL ``server.base_url``, which is also the OIDC ``issuer``):

- ``/.well-known/openid-configuration``, ``/jwks``, ``/authorize``, ``/token``, ``/userinfo``
- GitHub look-alike: ``/github/login/oauth/authorize``, ``/github/login/oauth/access_token``
  (JSON answers; send ``Accept: application/json``), ``/github/api/user``,
  ``/github/api/user/emails``

There is no log-in form: ``/authorize`` approves at once as ``server.next_user`` (a
:class:`TestUser`). Switches a test sets (``server.reset()`` puts them all back):

- ``deny``: answer ``error=access_denied`` instead of a code
- ``wrong_nonce``: put another ``nonce`` in the ``id_token``
- ``tamper_id_token``: change the ``id_token``'s payload after signing (bad signature)
- ``sign_with_unknown_key``: sign the ``id_token`` with a key the JWKS does not publish
- ``id_token_alg``: ``"RS256"`` (default) or ``"HS256"`` (signed with the client secret)
- ``id_token_claims``: extra claims merged last into the ``id_token`` (``{"aud": "x"}``)
- ``omit_email_in_id_token``: leave ``email``/``email_verified`` out (userinfo has them)
- ``token_auth_methods``: client authentication methods the token endpoint accepts and
  discovery advertises (default ``["client_secret_basic", "client_secret_post"]``)
- ``down``: answer every request with 503
- ``slow_seconds``: wait that long before answering any request (timeouts)

``rotate_key()`` makes a new signing key (with a new ``kid``) and publishes it. Counters:
``discovery_requests``, ``jwks_requests``; ``last_authorize_params`` holds the query of the
last ``/authorize`` request (to check PKCE S256, ``nonce``…).

Registered clients (:data:`CLIENTS`): ``google-client``, ``oidc-client`` and
``github-client``, each with its secret. For test simplicity every client accepts any
redirect URI on ``http://127.0.0.1`` or ``http://localhost`` (any port and path); nothing
else. The authorization request must carry a PKCE S256 challenge.

This server speaks plain HTTP on loopback. Authlib refuses non-TLS request URIs unless the
process-wide ``AUTHLIB_INSECURE_TRANSPORT`` is set; rather than flip that for the whole test
session, the request URI handed to Authlib says ``https://`` (Authlib only checks it).
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from authlib.common.security import generate_token
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeGrant,
    AuthorizationServer,
    ClientMixin,
    InvalidRequestError,
    JsonPayload,
    JsonRequest,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
)
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import AuthorizationCodeMixin, OpenIDCode, UserInfo
from joserfc.jwk import OctKey, RSAKey


@dataclass(frozen=True)
class TestUser:
    """The person the server signs in as (``server.next_user``)."""

    __test__ = False  # not a pytest test class

    sub: str = "user-1"
    email: str | None = "ada@example.com"
    email_verified: bool = True
    name: str = "Ada Lovelace"
    picture: str | None = "https://img.example.com/ada.png"
    login: str = "ada"
    """GitHub login."""
    github_id: int = 1815
    github_emails: tuple[dict[str, Any], ...] | None = None
    """The list ``/github/api/user/emails`` answers; default: ``email`` as primary (with
    ``email_verified``) plus a verified, non-primary noreply address."""


@dataclass(frozen=True)
class RegisteredClient(ClientMixin):
    """A client registered with the server."""

    client_id: str
    client_secret: str

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        return scope or ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Any http://127.0.0.1 or http://localhost URI (see the module docstring)."""
        parts = urlsplit(redirect_uri)
        return parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost"}

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(client_secret.encode(), self.client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in {"client_secret_basic", "client_secret_post"}

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


CLIENTS = {
    client.client_id: client
    for client in (
        RegisteredClient("google-client", "google-secret-0123456789abcdef"),
        RegisteredClient("oidc-client", "oidc-secret-0123456789abcdef"),
        RegisteredClient("github-client", "github-secret-0123456789abcdef"),
    )
}


@dataclass
class AuthorizationCode(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: TestUser
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int | None:
        return None


@dataclass
class IssuedToken:
    client_id: str
    user: TestUser
    scope: str


# ---------------------------------------------------------------------------
# Authlib glue: requests, grant, OpenID extension, server
# ---------------------------------------------------------------------------


@dataclass
class RawRequest:
    """An HTTP request as the handler read it."""

    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    headers: Message
    url: str

    def bearer_token(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        scheme, _, value = auth.partition(" ")
        return value.strip() if scheme.lower() in {"bearer", "token"} and value.strip() else None


class _Payload(OAuth2Payload):
    def __init__(self, raw: RawRequest) -> None:
        self._datalist: dict[str, list[str]] = defaultdict(list)
        for source in (raw.query, raw.form):
            for key, values in source.items():
                self._datalist[key].extend(values)

    @property
    def data(self) -> dict[str, str]:
        return {key: values[0] for key, values in self._datalist.items()}

    @property
    def datalist(self) -> dict[str, list[str]]:  # type: ignore[override]
        return self._datalist


class _OAuth2Request(OAuth2Request):
    def __init__(self, raw: RawRequest) -> None:
        # Authlib insists on TLS request URIs; see the module docstring.
        super().__init__(raw.method, raw.url.replace("http://", "https://", 1), headers=raw.headers)
        self.raw = raw
        self.payload = _Payload(raw)

    @property
    def args(self) -> dict[str, str]:
        return {key: values[0] for key, values in self.raw.query.items()}

    @property
    def form(self) -> dict[str, str]:
        return {key: values[0] for key, values in self.raw.form.items()}


class _JsonPayload(JsonPayload):
    def __init__(self, raw: RawRequest) -> None:
        self._raw = raw

    @property
    def data(self) -> Any:
        return {}


class _JsonRequest(JsonRequest):
    def __init__(self, raw: RawRequest) -> None:
        super().__init__(raw.method, raw.url, raw.headers)
        self.payload = _JsonPayload(raw)


@dataclass
class Response:
    status: int
    body: bytes
    headers: list[tuple[str, str]]


class _CodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    @property
    def owner(self) -> OAuthTestServer:
        return self.server.owner  # type: ignore[no-any-return]

    def authenticate_token_endpoint_client(self) -> Any:
        self.TOKEN_ENDPOINT_AUTH_METHODS = list(self.owner.token_auth_methods)
        return super().authenticate_token_endpoint_client()

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        data = request.payload.data
        self.owner.codes[code] = AuthorizationCode(
            code=code,
            client_id=request.client.client_id,
            redirect_uri=data.get("redirect_uri", ""),
            scope=request.scope or "",
            user=request.user,
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
        )

    def query_authorization_code(self, code: str, client: RegisteredClient) -> AuthorizationCode | None:
        item = self.owner.codes.get(code)
        return item if item is not None and item.client_id == client.client_id else None

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        self.owner.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: AuthorizationCode) -> TestUser:
        return authorization_code.user


class _StrictCodeChallenge(CodeChallenge):
    """PKCE, and only S256: an authorization request without it is refused."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE with code_challenge_method=S256 is required.")
        super().validate_code_challenge(grant, redirect_uri)


class _OpenIDCode(OpenIDCode):
    def __init__(self, owner: OAuthTestServer) -> None:
        super().__init__(require_nonce=True)
        self.owner = owner

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return nonce in self.owner.used_nonces

    def get_client_algorithm(self, client: RegisteredClient) -> str:
        return self.owner.id_token_alg

    def resolve_client_private_key(self, client: RegisteredClient) -> Any:
        if self.owner.id_token_alg.startswith("HS"):
            return OctKey.import_key(client.client_secret)
        if self.owner.sign_with_unknown_key:
            return self.owner.stranger_key
        return self.owner.signing_key

    def get_encode_header(self, client: RegisteredClient) -> dict[str, str]:
        header = {"alg": self.get_client_algorithm(client)}
        if not header["alg"].startswith("HS"):
            key = self.resolve_client_private_key(client)
            header["kid"] = key.kid
        return header

    def get_client_claims(self, client: RegisteredClient) -> dict[str, Any]:
        return {"iss": self.owner.issuer, "aud": [client.client_id]}

    def get_authorization_code_claims(self, authorization_code: AuthorizationCode) -> dict[str, Any]:
        claims = super().get_authorization_code_claims(authorization_code)
        if self.owner.wrong_nonce:
            claims["nonce"] = "not-the-nonce-you-sent"
        return claims

    def generate_user_info(self, user: TestUser, scope: str) -> UserInfo:
        info = UserInfo(sub=user.sub, name=user.name, picture=user.picture)
        if not self.owner.omit_email_in_id_token and user.email is not None:
            info["email"] = user.email
            info["email_verified"] = user.email_verified
        info.update(self.owner.id_token_claims)  # merged last: overrides iss, aud, exp…
        return info

    def process_token(self, grant: Any, response: Any) -> Any:
        token = super().process_token(grant, response)
        if self.owner.tamper_id_token and "id_token" in token:
            header, payload, signature = token["id_token"].split(".")
            claims = json.loads(_b64decode(payload))
            claims["email"] = "mallory@example.com"
            token["id_token"] = ".".join((header, _b64encode(json.dumps(claims).encode()), signature))
        return token


class _AuthorizationServer(AuthorizationServer):
    def __init__(self, owner: OAuthTestServer) -> None:
        super().__init__()
        self.owner = owner
        self.register_token_generator(
            "default", BearerTokenGenerator(lambda **_: generate_token(42), expires_generator=3600)
        )
        self.register_grant(_CodeGrant, [_StrictCodeChallenge(required=True), _OpenIDCode(owner)])

    def query_client(self, client_id: str) -> RegisteredClient | None:
        return CLIENTS.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self.owner.tokens[token["access_token"]] = IssuedToken(
            client_id=request.client.client_id, user=request.user, scope=token.get("scope", "")
        )
        if request.authorization_code is not None and request.authorization_code.nonce:
            self.owner.used_nonces.add(request.authorization_code.nonce)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return request if isinstance(request, OAuth2Request) else _OAuth2Request(request)

    def create_json_request(self, request: Any) -> JsonRequest:
        return _JsonRequest(request)

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        return _response(status, body, list(headers or []))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _response(status: int, body: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    headers = list(headers or [])
    if isinstance(body, dict | list):
        data = json.dumps(body).encode()
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", "application/json"))
    else:
        data = (body or "").encode() if isinstance(body, str) else bytes(body or b"")
    return Response(status, data, headers)


# ---------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------


class OAuthTestServer:
    """The authorization server and its web layer; see the module docstring."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.app = self  # type: ignore[attr-defined]
        self.base_url = f"http://{host}:{self._httpd.server_address[1]}"
        self.issuer = self.base_url
        self.signing_key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"},
                                               auto_kid=True)
        self.published_keys: list[RSAKey] = [self.signing_key]
        self.stranger_key = RSAKey.generate_key(2048, parameters={"alg": "RS256"}, auto_kid=True)
        self.authorization_server = _AuthorizationServer(self)
        self.codes: dict[str, AuthorizationCode] = {}
        self.tokens: dict[str, IssuedToken] = {}
        self.used_nonces: set[str] = set()
        self._thread: threading.Thread | None = None
        self.reset()

    # -- configuration ------------------------------------------------------
    def reset(self) -> None:
        """Put every switch back to its default (the keys stay)."""
        self.next_user = TestUser()
        self.deny = False
        self.wrong_nonce = False
        self.tamper_id_token = False
        self.sign_with_unknown_key = False
        self.id_token_alg = "RS256"
        self.id_token_claims: dict[str, Any] = {}
        self.omit_email_in_id_token = False
        self.token_auth_methods = ["client_secret_basic", "client_secret_post"]
        self.down = False
        self.slow_seconds = 0.0
        self.last_authorize_params: dict[str, str] = {}
        self.discovery_requests = 0
        self.jwks_requests = 0

    def rotate_key(self) -> RSAKey:
        """Sign with a new key (new ``kid``) from now on; the JWKS publishes both."""
        self.signing_key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"},
                                               auto_kid=True)
        self.published_keys.append(self.signing_key)
        return self.signing_key

    @property
    def discovery_url(self) -> str:
        return f"{self.base_url}/.well-known/openid-configuration"

    @property
    def github_urls(self) -> dict[str, str]:
        """``authorize_url``, ``token_url`` and ``api_url`` for ``[plugins.github_auth]``."""
        return {
            "authorize_url": f"{self.base_url}/github/login/oauth/authorize",
            "token_url": f"{self.base_url}/github/login/oauth/access_token",
            "api_url": f"{self.base_url}/github/api",
        }

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> OAuthTestServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="oauth-test-server",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- dispatch -----------------------------------------------------------
    def handle(self, request: RawRequest) -> Response:
        if self.slow_seconds:
            time.sleep(self.slow_seconds)
        with self._lock:
            if self.down:
                return _response(503, {"error": "temporarily_unavailable"})
            route = self._routes().get((request.method, request.path))
            if route is None:
                return _response(404, {"error": "not_found"})
            return route(request)

    def _routes(self) -> dict[tuple[str, str], Any]:
        return {
            ("GET", "/.well-known/openid-configuration"): self._discovery,
            ("GET", "/jwks"): self._jwks,
            ("GET", "/authorize"): self._authorize,
            ("POST", "/token"): self._token,
            ("GET", "/userinfo"): self._userinfo,
            ("POST", "/userinfo"): self._userinfo,
            ("GET", "/github/login/oauth/authorize"): self._authorize,
            ("POST", "/github/login/oauth/access_token"): self._token,
            ("GET", "/github/api/user"): self._github_user,
            ("GET", "/github/api/user/emails"): self._github_emails,
        }

    def _discovery(self, request: RawRequest) -> Response:
        self.discovery_requests += 1
        base = self.base_url
        return _response(200, {
            "issuer": self.issuer,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "HS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": list(self.token_auth_methods),
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "email",
                                 "email_verified", "name", "picture"],
        })

    def _jwks(self, request: RawRequest) -> Response:
        self.jwks_requests += 1
        return _response(200, {"keys": [key.as_dict(private=False) for key in self.published_keys]})

    def _authorize(self, request: RawRequest) -> Response:
        server = self.authorization_server
        oauth_request = server.create_oauth2_request(request)
        self.last_authorize_params = dict(oauth_request.payload.data)
        user = self.next_user
        try:
            grant = server.get_consent_grant(oauth_request, end_user=user)
        except OAuth2Error as error:
            return server.handle_error_response(oauth_request, error)  # type: ignore[no-any-return]
        return server.create_authorization_response(  # type: ignore[no-any-return]
            oauth_request, grant_user=None if self.deny else user, grant=grant
        )

    def _token(self, request: RawRequest) -> Response:
        return self.authorization_server.create_token_response(request)  # type: ignore[no-any-return]

    def _issued(self, request: RawRequest, client_id: str | None = None) -> IssuedToken | None:
        token = request.bearer_token()
        issued = self.tokens.get(token) if token else None
        if issued is None or (client_id is not None and issued.client_id != client_id):
            return None
        return issued

    def _userinfo(self, request: RawRequest) -> Response:
        issued = self._issued(request)
        if issued is None or "openid" not in issued.scope.split():
            return _response(401, {"error": "invalid_token"}, [("WWW-Authenticate", "Bearer")])
        user = issued.user
        info: dict[str, Any] = {"sub": user.sub, "name": user.name, "picture": user.picture}
        if user.email is not None:
            info.update(email=user.email, email_verified=user.email_verified)
        return _response(200, info)

    def _github_user(self, request: RawRequest) -> Response:
        issued = self._issued(request, "github-client")
        if issued is None:
            return _response(401, {"message": "Bad credentials"})
        user = issued.user
        return _response(200, {
            "id": user.github_id,
            "login": user.login,
            "name": user.name or None,
            "email": None,
            "avatar_url": user.picture,
            "html_url": f"https://github.com/{user.login}",
        })

    def _github_emails(self, request: RawRequest) -> Response:
        issued = self._issued(request, "github-client")
        if issued is None:
            return _response(401, {"message": "Bad credentials"})
        if "user:email" not in issued.scope.split():
            return _response(404, {"message": "Not Found"})
        user = issued.user
        if user.github_emails is not None:
            return _response(200, list(user.github_emails))
        emails = [{"email": f"{user.github_id}+{user.login}@users.noreply.github.com",
                   "primary": False, "verified": True, "visibility": None}]
        if user.email is not None:
            emails.insert(0, {"email": user.email, "primary": True, "verified": user.email_verified,
                              "visibility": "private"})
        return _response(200, emails)


class _Handler(BaseHTTPRequestHandler):
    server_version = "mercato-oauth-test/1"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        form: dict[str, list[str]] = {}
        if (self.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            form = parse_qs(body.decode(), keep_blank_values=True)
        host = self.headers.get("Host") or "127.0.0.1"
        request = RawRequest(
            method=method, path=parts.path, query=parse_qs(parts.query, keep_blank_values=True),
            form=form, headers=self.headers, url=f"http://{host}{self.path}",
        )
        response = self.server.app.handle(request)  # type: ignore[attr-defined]
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


def unused_port() -> int:
    """A loopback port nothing listens on (for "connection refused")."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_pkce_values() -> dict[str, str]:
    """Fresh ``state``, ``nonce`` and ``code_verifier``, as the core makes them."""
    return {
        "state": secrets.token_urlsafe(24),
        "nonce": secrets.token_urlsafe(24),
        "code_verifier": secrets.token_urlsafe(48),
    }


__all__ = ["CLIENTS", "OAuthTestServer", "TestUser", "new_pkce_values", "unused_port"]

"""Signed tokens: JWT access tokens for the API, session tokens for the browser cookie,
and opaque random tokens (refresh tokens, e-mail links) stored only as hashes.

JWTs are HS256 with a key derived from the site secret. Decoding accepts that algorithm
only (so ``alg=none`` and algorithm-confusion tokens fail) and checks ``iss``, ``aud``,
``exp``, ``iat``, ``sub`` and the token type, so an access token is never taken for a
session cookie or the other way round.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

ALGORITHM = "HS256"
ALLOWED_ALGORITHMS = [ALGORITHM]
LEEWAY_SECONDS = 30
"""Clock skew tolerated between app instances."""


class InvalidToken(Exception):
    """The token is malformed, wrongly signed, expired or meant for something else."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified access or session token says."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    roles: frozenset[str]
    issued_at: int
    expires_at: int


def derive_key(secret: str, purpose: str) -> bytes:
    """A key for one purpose, so a leak or misuse of one kind of token reveals no other."""
    return hmac.new(secret.encode(), f"mercato:{purpose}".encode(), hashlib.sha256).digest()


def random_token(nbytes: int = 32) -> str:
    """An unguessable URL-safe token (refresh tokens, e-mail links)."""
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    """What the database keeps of a random token: its SHA-256, hex. A leaked table cannot
    be replayed, and lookups stay exact (the token has 256 bits of entropy, so no salt)."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenSigner:
    """Issues and verifies the JWTs of one site."""

    def __init__(self, secret: str, *, issuer: str) -> None:
        self._key = OctKey.import_key(derive_key(secret, "jwt"))
        self.issuer = issuer
        self._registries: dict[str, jwt.JWTClaimsRegistry] = {}

    def issue(self, kind: str, *, user_id: uuid.UUID, session_id: uuid.UUID, roles: frozenset[str],
              ttl_seconds: int, now: int | None = None) -> str:
        """A token of ``kind`` (``access`` or ``session``) valid for ``ttl_seconds``."""
        issued = int(time.time()) if now is None else now
        claims = {
            "iss": self.issuer, "aud": self._audience(kind), "sub": str(user_id),
            "sid": str(session_id), "roles": sorted(roles),
            "iat": issued, "exp": issued + ttl_seconds, "jti": secrets.token_urlsafe(8),
        }
        return jwt.encode({"alg": ALGORITHM, "typ": self._typ(kind)}, claims, self._key)

    def verify(self, kind: str, token: str) -> TokenClaims:
        """The claims of a valid token of ``kind``; :class:`InvalidToken` otherwise."""
        try:
            decoded = jwt.decode(token, self._key, algorithms=ALLOWED_ALGORITHMS)
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidToken(f"token cannot be decoded: {type(exc).__name__}") from None
        if decoded.header.get("typ") != self._typ(kind):
            raise InvalidToken("wrong token type")
        claims = decoded.claims
        try:
            self._registry(kind).validate(claims)
            if int(claims["iat"]) > time.time() + LEEWAY_SECONDS:
                raise InvalidToken("token issued in the future")
            return TokenClaims(
                user_id=uuid.UUID(claims["sub"]), session_id=uuid.UUID(claims["sid"]),
                roles=frozenset(str(r) for r in claims.get("roles") or ()),
                issued_at=int(claims["iat"]), expires_at=int(claims["exp"]),
            )
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise InvalidToken(f"token claims rejected: {type(exc).__name__}") from None

    def _registry(self, kind: str) -> jwt.JWTClaimsRegistry:
        registry = self._registries.get(kind)
        if registry is None:
            registry = self._registries[kind] = jwt.JWTClaimsRegistry(
                leeway=LEEWAY_SECONDS,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self._audience(kind)},
                sub={"essential": True}, sid={"essential": True},
                exp={"essential": True}, iat={"essential": True},
            )
        return registry

    def _audience(self, kind: str) -> str:
        return f"{self.issuer}#{kind}"

    @staticmethod
    def _typ(kind: str) -> str:
        return "at+jwt" if kind == "access" else f"mercato-{kind}+jwt"


def csrf_token(secret: str, nonce: str, session_id: str) -> str:
    """The CSRF token for a browser holding CSRF cookie ``nonce`` in session ``session_id``
    (signed double-submit: a token is useless without the cookie it was made for)."""
    return hmac.new(derive_key(secret, "csrf"), f"{nonce}|{session_id}".encode(), hashlib.sha256).hexdigest()

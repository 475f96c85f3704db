"""Password hashing (argon2id) and the policy a new password must meet.

Hashing costs tens of milliseconds of CPU on purpose, so both hashing and verifying run in
a worker thread, off the event loop. Passwords are never logged, echoed or kept anywhere but
in the hash.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn

MIN_LENGTH = 8
MAX_LENGTH = 256
"""Long passphrases are welcome; the cap only keeps hashing time bounded."""
_SCORED_PREFIX = 100
"""zxcvbn's time grows with length; a longer password is scored on its first 100 characters."""

# OWASP's Password Storage Cheat Sheet: argon2id with m=19 MiB, t=2, p=1. Stronger profiles
# (RFC 9106's 64 MiB) cost ~5x the CPU per log-in for little gain against offline attack
# on a hash that is already memory-hard; stored hashes carry their own parameters, and
# ``needs_rehash`` upgrades them on the next log-in if these change.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16,
                         type=Type.ID)
_DUMMY_HASH = _HASHER.hash("mercato timing equaliser")


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    """Outcome of :func:`verify_password`."""

    ok: bool
    needs_rehash: bool = False


async def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (PHC string with its own salt and parameters)."""
    return await asyncio.to_thread(_HASHER.hash, password)


async def verify_password(stored_hash: str | None, password: str) -> PasswordCheck:
    """Check ``password`` against ``stored_hash``. With no hash (unknown account, or one that
    signs in only through a provider), a dummy hash is checked anyway so the answer takes
    as long as for a real account."""
    return await asyncio.to_thread(_verify, stored_hash, password)


def _verify(stored_hash: str | None, password: str) -> PasswordCheck:
    if not stored_hash:
        with contextlib.suppress(VerificationError):
            _HASHER.verify(_DUMMY_HASH, password)
        return PasswordCheck(ok=False)
    try:
        _HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return PasswordCheck(ok=False)
    return PasswordCheck(ok=True, needs_rehash=_HASHER.check_needs_rehash(stored_hash))


def password_problems(password: str, *, min_score: int, user_inputs: Iterable[str] = ()) -> list[str]:
    """Why ``password`` is not acceptable as a new password (empty when it is).

    Length first (8 to 256 characters), then strength: zxcvbn estimates how many guesses a
    password needs, knowing common passwords, names, keyboard patterns and ``user_inputs``
    (the person's e-mail and name), and its score must reach ``min_score``.
    """
    if len(password) < MIN_LENGTH:
        return [f"Use at least {MIN_LENGTH} characters."]
    if len(password) > MAX_LENGTH:
        return [f"Use at most {MAX_LENGTH} characters."]
    if min_score <= 0:
        return []
    inputs = [part for value in user_inputs for part in _words(value)]
    result = zxcvbn(password[:_SCORED_PREFIX], user_inputs=inputs)
    if result["score"] >= min_score:
        return []
    feedback = result.get("feedback") or {}
    reason = feedback.get("warning") or "This password is too easy to guess."
    suggestions = [s for s in feedback.get("suggestions") or () if s]
    advice = suggestions[0] if suggestions else "Add a few more words or characters."
    return [f"{reason.rstrip('.')}. {advice}"]


def _words(value: str) -> list[str]:
    """``ada.lovelace@example.com`` → the whole value and its parts, for zxcvbn."""
    parts = [value]
    for sep in "@._-+ ":
        parts = [piece for part in parts for piece in part.split(sep)] + parts
    return sorted({p.lower() for p in parts if len(p) >= 3})

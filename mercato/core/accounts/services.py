"""Business rules of accounts: sign-up, sessions and tokens, e-mail links, suspension and
deletion. The only place that changes these tables; routes stay thin and call in here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog
from email_validator import EmailNotValidError, validate_email
from litestar.exceptions import (
    ClientException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ServiceUnavailableException,
)
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from mercato.core.accounts import events
from mercato.core.accounts.models import (
    AccountToken,
    AuthSession,
    PortfolioItem,
    Profile,
    RefreshToken,
    Role,
    SessionKind,
    TokenPurpose,
    User,
    UserIdentity,
    UserSkill,
    UserStatus,
)
from mercato.core.accounts.sessions import runtime_of
from mercato.core.db import utcnow
from mercato.core.errors import field_error
from mercato.core.events import Event, emit
from mercato.core.mail import MailError
from mercato.core.security.passwords import hash_password, password_problems, verify_password
from mercato.core.security.providers import ExternalIdentity, ProviderError
from mercato.core.security.tokens import random_token, token_hash

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site

log = structlog.get_logger("mercato.accounts")

SIGNUP_ROLES = frozenset({Role.CLIENT.value, Role.DEVELOPER.value})
REAUTH_WINDOW = timedelta(minutes=10)
"""Accounts without a password prove themselves again by signing in this recently."""


class Conflict(ClientException):
    status_code = 409


@dataclass(frozen=True, slots=True)
class TokenPair:
    """What ``/auth/login`` and ``/auth/refresh`` answer."""

    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


def normalise_email(value: str, *, field: str = "email") -> tuple[str, str]:
    """(the address as written, its unique key); a 400 naming ``field`` when malformed."""
    try:
        checked = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise field_error(field, f"Enter a valid e-mail address ({exc}).") from None
    return checked.normalized, checked.normalized.casefold()


def mask_email(email: str) -> str:
    """``ada@example.com`` → ``a**@example.com`` (for mails sent to the old address)."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}{'*' * max(2, len(local) - 1)}@{domain}"


class AccountService:
    """Accounts of one site."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.settings = site.settings.accounts
        self.runtime = runtime_of(site)

    # -- people ----------------------------------------------------------------
    async def get_user(self, session: AsyncSession, user_id: uuid.UUID) -> User:
        """An active account by id, else 404 (suspended and deleted ones are not shown)."""
        user = await session.get(User, user_id)
        if user is None or user.status == UserStatus.DELETED:
            raise NotFoundException("No such user.")
        return user

    async def find_by_email(self, session: AsyncSession, email: str) -> User | None:
        key = email.strip().casefold()
        return (await session.execute(select(User).where(User.email_key == key))).scalar_one_or_none()

    async def register(
        self, session: AsyncSession, *, email: str, display_name: str, roles: list[str],
        password: str | None, method: str = "password", verified: bool = False, admin: bool = False,
    ) -> User:
        """Create an account (and its empty profile). ``password`` None: provider sign-in only."""
        address, key = normalise_email(email)
        name = " ".join(display_name.split())
        if not name:
            raise field_error("display_name", "Enter your name as others should see it.")
        wanted = set(roles)
        if not wanted or not wanted <= SIGNUP_ROLES:
            raise field_error("roles", "Choose client, developer or both.")
        password_hash = None
        if password is not None:
            problems = password_problems(password, min_score=self.settings.min_password_score,
                                         user_inputs=[address, name])
            if problems:
                raise field_error("password", problems[0])
            password_hash = await hash_password(password)
        if await self.find_by_email(session, key) is not None:
            raise Conflict("An account already uses this e-mail address. Log in, or reset your password.")
        now = utcnow()
        user = User(
            email=address, email_key=key, display_name=name[:100],
            is_client=Role.CLIENT in wanted, is_developer=Role.DEVELOPER in wanted, is_admin=admin,
            password_hash=password_hash, password_changed_at=now if password_hash else None,
            email_verified_at=now if verified else None,
        )
        session.add(user)
        try:
            await session.flush()
        except IntegrityError:  # the same address signed up at the same moment
            raise Conflict("An account already uses this e-mail address. Log in, or reset your "
                           "password.") from None
        session.add(Profile(user_id=user.id))
        registered = events.UserRegistered(user_id=user.id, roles=sorted(user.roles), method=method)
        emit(session, Event.of(registered, actor_id=user.id))
        if verified:
            emit(session, Event.of(events.UserVerified(user_id=user.id), actor_id=user.id))
        log.info("user registered", user_id=str(user.id), method=method)
        return user

    # -- sessions and tokens --------------------------------------------------
    async def start_session(self, session: AsyncSession, user: User, *, kind: SessionKind,
                            user_agent: str = "") -> AuthSession:
        if not user.is_active:
            raise NotAuthorizedException("This account is suspended.")
        lifetime = (timedelta(days=self.settings.session_days) if kind == SessionKind.BROWSER
                    else timedelta(days=self.settings.refresh_token_days))
        now = utcnow()
        auth = AuthSession(user_id=user.id, kind=kind.value, created_at=now, authenticated_at=now,
                           expires_at=now + lifetime, user_agent=user_agent[:255])
        session.add(auth)
        user.last_login_at = now
        await session.flush()
        return auth

    def session_cookie_token(self, user: User, auth: AuthSession) -> str:
        """The browser cookie's token: a signed JWT naming the session."""
        ttl = int((auth.expires_at - utcnow()).total_seconds())
        return self.runtime.signer.issue("session", user_id=user.id, session_id=auth.id, roles=user.roles,
                                         ttl_seconds=max(ttl, 1))

    async def issue_tokens(self, session: AsyncSession, user: User, auth: AuthSession) -> TokenPair:
        """A fresh access token and refresh token for API session ``auth``."""
        refresh = random_token()
        now = utcnow()
        session.add(RefreshToken(session_id=auth.id, token_hash=token_hash(refresh), created_at=now,
                                 expires_at=auth.expires_at))
        ttl = self.settings.access_token_minutes * 60
        access = self.runtime.signer.issue("access", user_id=user.id, session_id=auth.id, roles=user.roles,
                                           ttl_seconds=ttl)
        return TokenPair(access_token=access, refresh_token=refresh, expires_in=ttl)

    async def login_api(self, session: AsyncSession, user: User, *, user_agent: str = "") -> TokenPair:
        auth = await self.start_session(session, user, kind=SessionKind.API, user_agent=user_agent)
        return await self.issue_tokens(session, user, auth)

    async def refresh(self, session: AsyncSession, refresh_token: str) -> TokenPair | None:
        """Rotate a refresh token. Presenting one that was already used means it leaked
        (or a client retried after losing the answer): the whole family is revoked and the
        answer is ``None`` - commit, then refuse, so the revocation is not rolled back."""
        invalid = NotAuthorizedException("This refresh token is not valid. Log in again.")
        row = (await session.execute(
            select(RefreshToken).where(RefreshToken.token_hash == token_hash(refresh_token))
        )).scalar_one_or_none()
        if row is None:
            raise invalid
        auth = await session.get(AuthSession, row.session_id)
        now = utcnow()
        if auth is None or auth.revoked_at is not None or auth.expires_at <= now or row.expires_at <= now:
            raise invalid
        claimed = await session.execute(
            update(RefreshToken).where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None))
            .values(used_at=now)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            await self.revoke_sessions(session, [auth], reason="refresh_reuse")
            log.warning("refresh token reused; session family revoked", session_id=str(auth.id))
            return None
        user = await session.get(User, auth.user_id)
        if user is None or not user.is_active:
            raise invalid
        return await self.issue_tokens(session, user, auth)

    async def session_of_refresh_token(self, session: AsyncSession, refresh_token: str) -> AuthSession:
        row = (await session.execute(
            select(RefreshToken).where(RefreshToken.token_hash == token_hash(refresh_token))
        )).scalar_one_or_none()
        auth = await session.get(AuthSession, row.session_id) if row is not None else None
        if auth is None:
            raise NotAuthorizedException("This refresh token is not valid.")
        return auth

    async def revoke_sessions(self, session: AsyncSession, sessions: list[AuthSession], *,
                              reason: str) -> None:
        """Revoke ``sessions`` now, here and (after commit) on every instance."""
        live = [auth for auth in sessions if auth.revoked_at is None]
        now = utcnow()
        for auth in live:
            auth.revoked_at = now
            auth.revoked_reason = reason
        self.runtime.defer_revocation(session.sync_session, sessions)

    async def revoke_session_id(self, session: AsyncSession, session_id: uuid.UUID, *, reason: str) -> None:
        auth = await session.get(AuthSession, session_id)
        if auth is not None:
            await self.revoke_sessions(session, [auth], reason=reason)

    async def revoke_user_sessions(self, session: AsyncSession, user_id: uuid.UUID, *, reason: str,
                                   keep: uuid.UUID | None = None) -> None:
        """Revoke every live session of a person (except ``keep``, the one asking)."""
        rows = (await session.execute(
            select(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None),
                                      AuthSession.expires_at > utcnow())
        )).scalars().all()
        await self.revoke_sessions(session, [row for row in rows if row.id != keep], reason=reason)

    async def live_session(self, session: AsyncSession, session_id: uuid.UUID) -> AuthSession:
        auth = await session.get(AuthSession, session_id)
        if auth is None or auth.revoked_at is not None or auth.expires_at <= utcnow():
            raise NotAuthorizedException("Your session has ended. Log in again.")
        return auth

    # -- passwords --------------------------------------------------------------
    async def authenticate(self, session: AsyncSession, email: str, password: str) -> User | None:
        """The account ``email`` + ``password`` belong to, or None. Takes as long for an unknown
        address as for a wrong password, and says nothing about which it was."""
        user = await self.find_by_email(session, email)
        check = await verify_password(user.password_hash if user else None, password)
        if user is None or not check.ok or user.status == UserStatus.DELETED:
            return None
        if check.needs_rehash:
            user.password_hash = await hash_password(password)
        return user

    async def check_password(self, user: User, password: str, *, field: str = "current_password") -> None:
        """Re-authentication before a sensitive change; 400 on ``field`` if wrong."""
        if not (await verify_password(user.password_hash, password)).ok:
            raise field_error(field, "That is not your current password.")

    async def require_reauthentication(self, session: AsyncSession, user: User, *, password: str | None,
                                       session_id: uuid.UUID) -> None:
        """Ask for the password again, or (provider-only accounts) a recent sign-in."""
        if user.password_hash:
            await self.check_password(user, password or "", field="password")
            return
        auth = await self.live_session(session, session_id)
        if utcnow() - auth.authenticated_at > REAUTH_WINDOW:
            raise NotAuthorizedException("Sign in again to confirm it is you, then retry.")

    async def set_password(self, session: AsyncSession, user: User, new_password: str, *,
                           keep_session: uuid.UUID | None, reason: str = "password_changed",
                           field: str = "new_password") -> None:
        problems = password_problems(new_password, min_score=self.settings.min_password_score,
                                     user_inputs=[user.email, user.display_name])
        if problems:
            raise field_error(field, problems[0])
        user.password_hash = await hash_password(new_password)
        user.password_changed_at = utcnow()
        await self.revoke_user_sessions(session, user.id, reason=reason, keep=keep_session)
        emit(session, Event.of(events.UserPasswordChanged(user_id=user.id), actor_id=user.id))
        # Tell the owner, so a change they did not make does not go unnoticed.
        self.runtime.mail_after_commit(session.sync_session, to=user.email, template="password_changed",
                                       display_name=user.display_name)

    # -- e-mailed links ---------------------------------------------------------
    async def issue_account_token(self, session: AsyncSession, user: User, purpose: TokenPurpose, *,
                                  email: str, lifetime: timedelta) -> str:
        """A single-use link token; older unused tokens of the same purpose stop working."""
        now = utcnow()
        await session.execute(
            update(AccountToken)
            .where(AccountToken.user_id == user.id, AccountToken.purpose == purpose.value,
                   AccountToken.used_at.is_(None))
            .values(used_at=now)
        )
        token = random_token()
        session.add(AccountToken(user_id=user.id, purpose=purpose.value, token_hash=token_hash(token),
                                 email=email, created_at=now, expires_at=now + lifetime))
        return token

    async def consume_account_token(self, session: AsyncSession, purpose: TokenPurpose,
                                    token: str) -> tuple[User, AccountToken]:
        """Spend a link token exactly once (a concurrent second use loses the race)."""
        expired = ClientException("This link has expired or was already used. Ask for a new one.")
        row = (await session.execute(
            select(AccountToken).where(AccountToken.token_hash == token_hash(token),
                                       AccountToken.purpose == purpose.value)
        )).scalar_one_or_none()
        now = utcnow()
        if row is None or row.used_at is not None or row.expires_at <= now:
            raise expired
        claimed = await session.execute(
            update(AccountToken).where(AccountToken.id == row.id, AccountToken.used_at.is_(None))
            .values(used_at=now)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise expired
        user = await session.get(User, row.user_id)
        if user is None or user.status == UserStatus.DELETED:
            raise expired
        return user, row

    async def _mail(self, *, to: str, template: str, **context: object) -> None:
        try:
            await self.site.mail.send(to=to, template=template, **context)
        except MailError as exc:
            log.error("mail failed", template=template, error=str(exc))
            raise ServiceUnavailableException("We could not send the e-mail just now. Nothing was changed; "
                                              "please try again in a few minutes.") from None

    def link(self, path: str, token: str) -> str:
        return f"{self.site.settings.site.base_url.rstrip('/')}{path}?token={token}"

    async def send_verification(self, session: AsyncSession, user: User) -> None:
        """Mail a verification link to the account's address."""
        hours = self.settings.verification_link_hours
        token = await self.issue_account_token(session, user, TokenPurpose.VERIFY_EMAIL, email=user.email,
                                               lifetime=timedelta(hours=hours))
        await self._mail(to=user.email, template="verify_email", display_name=user.display_name,
                                  link=self.link("/verify-email", token), hours=hours)

    async def verify_email(self, session: AsyncSession, token: str) -> User:
        user, row = await self.consume_account_token(session, TokenPurpose.VERIFY_EMAIL, token)
        if row.email.casefold() != user.email_key:
            raise ClientException("This link was for an address the account no longer uses.")
        self.mark_verified(session, user)
        return user

    def mark_verified(self, session: AsyncSession, user: User) -> None:
        """Record that ``user`` proved they own their address (once; emits ``user.verified``)."""
        if user.email_verified_at is None:
            user.email_verified_at = utcnow()
            emit(session, Event.of(events.UserVerified(user_id=user.id), actor_id=user.id))

    def require_verified(self, user: User) -> None:
        """The gate on posting, bidding and money when ``[accounts] require_verified_email``."""
        if self.settings.require_verified_email and not user.email_verified:
            raise PermissionDeniedException(
                "Verify your e-mail address first: open the link we sent you, or ask for a new one "
                "in your account settings.")

    async def request_password_reset(self, session: AsyncSession, email: str) -> None:
        """Mail a reset link if ``email`` has an account, after commit and in the background:
        the answer must not take longer when the account exists (no enumeration by timing)."""
        user = await self.find_by_email(session, email)
        if user is None or not user.is_active:
            return
        minutes = self.settings.password_reset_minutes
        token = await self.issue_account_token(session, user, TokenPurpose.RESET_PASSWORD, email=user.email,
                                               lifetime=timedelta(minutes=minutes))
        self.runtime.mail_after_commit(session.sync_session, to=user.email, template="password_reset",
                                       display_name=user.display_name, minutes=minutes,
                                       link=self.link("/reset-password", token))

    async def reset_password(self, session: AsyncSession, token: str, new_password: str) -> User:
        user, _ = await self.consume_account_token(session, TokenPurpose.RESET_PASSWORD, token)
        if not user.is_active:
            raise ClientException("This account is suspended.")
        await self.set_password(session, user, new_password, keep_session=None, reason="password_reset")
        self.mark_verified(session, user)  # the link proved the address
        return user

    async def request_email_change(self, session: AsyncSession, user: User, new_email: str) -> None:
        address, key = normalise_email(new_email, field="new_email")
        if key == user.email_key:
            raise field_error("new_email", "That is already your address.")
        if await self.find_by_email(session, key) is not None:
            raise Conflict("Another account already uses this e-mail address.")
        hours = self.settings.verification_link_hours
        token = await self.issue_account_token(session, user, TokenPurpose.CHANGE_EMAIL, email=address,
                                               lifetime=timedelta(hours=hours))
        await self._mail(to=address, template="verify_email", display_name=user.display_name,
                         link=self.link("/confirm-email", token), hours=hours, changing=True)

    async def confirm_email_change(self, session: AsyncSession, token: str) -> User:
        user, row = await self.consume_account_token(session, TokenPurpose.CHANGE_EMAIL, token)
        key = row.email.casefold()
        if await self.find_by_email(session, key) is not None:
            raise Conflict("Another account now uses this e-mail address.")
        old = user.email
        user.email, user.email_key, user.email_verified_at = row.email, key, utcnow()
        emit(session, Event.of(events.UserEmailChanged(user_id=user.id), actor_id=user.id))
        await self._mail(to=old, template="email_changed", display_name=user.display_name,
                                  new_email_hint=mask_email(row.email))
        return user

    # -- external providers -----------------------------------------------------
    async def login_external(self, session: AsyncSession, identity: ExternalIdentity, *,
                             roles: list[str]) -> User:
        """The account for ``identity``: already linked, else linked by a *verified* e-mail,
        else a new account (when sign-up is open)."""
        linked = (await session.execute(
            select(User).join(UserIdentity, UserIdentity.user_id == User.id)
            .where(UserIdentity.provider == identity.provider, UserIdentity.subject == identity.subject)
        )).scalar_one_or_none()
        if linked is not None:
            return linked
        if not identity.email or not identity.email_verified:
            raise ProviderError("Your e-mail address at this provider is not verified. Verify it there, "
                                "or sign up with a password.")
        user = await self.find_by_email(session, identity.email)
        if user is None:
            if not self.settings.allow_registration:
                raise ProviderError("Sign-up is closed on this marketplace. "
                                    "Ask an administrator for an account.")
            user = await self.register(session, email=identity.email, display_name=identity.display_name or
                                       identity.email.split("@")[0], roles=roles or [Role.CLIENT.value],
                                       password=None, method=identity.provider, verified=True)
        elif user.email_verified_at is None:
            # The provider proves this person owns the address; whoever signed up with it
            # before never did. Drop that password and its sessions, so an account
            # "pre-registered" by someone else cannot be used to watch the real owner.
            user.password_hash = None
            await self.revoke_user_sessions(session, user.id, reason="ownership_proved")
            self.mark_verified(session, user)
        session.add(UserIdentity(user_id=user.id, provider=identity.provider, subject=identity.subject))
        return user

    # -- suspension and deletion -----------------------------------------------
    async def suspend(self, session: AsyncSession, user: User, *, reason: str,
                      actor_id: uuid.UUID | None) -> None:
        if user.status == UserStatus.DELETED:
            raise NotFoundException("No such user.")
        user.status = UserStatus.SUSPENDED
        user.suspended_reason = reason[:500]
        await self.revoke_user_sessions(session, user.id, reason="suspended")
        emit(session, Event.of(events.UserSuspended(user_id=user.id, reason=reason), actor_id=actor_id))

    async def reinstate(self, session: AsyncSession, user: User, *, actor_id: uuid.UUID | None) -> None:
        if user.status != UserStatus.SUSPENDED:
            raise Conflict("This account is not suspended.")
        user.status = UserStatus.ACTIVE
        user.suspended_reason = None
        emit(session, Event.of(events.UserReinstated(user_id=user.id), actor_id=actor_id))

    async def delete_account(self, session: AsyncSession, user: User) -> list[str]:
        """Remove personal data; the row stays, anonymised, so contracts and reviews keep a
        party. Returns storage keys (avatar, portfolio images) to delete after commit."""
        profile = await session.get(Profile, user.id)
        files: list[str] = []
        if profile is not None:
            if profile.avatar_key:
                files.append(profile.avatar_key)
            await session.delete(profile)
        items = (await session.execute(
            select(PortfolioItem).where(PortfolioItem.user_id == user.id))).scalars()
        for item in items:
            files += [image["key"] for image in item.images]
            await session.delete(item)
        await self.revoke_user_sessions(session, user.id, reason="deleted")
        for model in (UserSkill, UserIdentity, AccountToken):
            await session.execute(delete(model).where(model.user_id == user.id))  # type: ignore[attr-defined]
        user.email = f"deleted-{user.id.hex}@invalid"
        user.email_key = user.email
        user.display_name = "Deleted user"
        user.password_hash = None
        user.status = UserStatus.DELETED
        user.deleted_at = utcnow()
        user.suspended_reason = None
        await session.execute(update(AuthSession).where(AuthSession.user_id == user.id).values(user_agent=""))
        emit(session, Event.of(events.UserDeleted(user_id=user.id), actor_id=user.id))
        return files

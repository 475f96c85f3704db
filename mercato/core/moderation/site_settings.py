"""Site settings admins change at run time, stored in ``site_settings`` and applied on every
app instance without a restart.

The file (``mercato.toml``) gives the defaults; an override replaces one value. A change is
applied where it was made right after commit, then announced on the plain NATS subject
``<prefix>.internal.settings.changed``: every instance reloads the overrides from the
database (they also reload at start and every minute, in case a message was missed).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from sqlalchemy import select

from mercato.core.db import utcnow
from mercato.core.errors import field_error
from mercato.core.moderation.audit import record
from mercato.core.moderation.models import SiteSetting
from mercato.core.tasks import stop_task

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.settings import Settings
    from mercato.core.site import Site

log = structlog.get_logger("mercato.moderation")

RELOAD_SECONDS = 60.0
STATE_KEY = "moderation.settings"


@dataclass(frozen=True)
class Overridable:
    """One setting admins may change."""

    key: str
    """``<section>.<field>`` or ``plugins.<id>.<field>``."""
    label: str
    hint: str

    @property
    def plugin(self) -> str | None:
        parts = self.key.split(".")
        return parts[1] if parts[0] == "plugins" else None

    @property
    def section(self) -> str:
        return self.key.split(".")[-2]

    @property
    def field(self) -> str:
        return self.key.split(".")[-1]


OVERRIDABLE: tuple[Overridable, ...] = (
    Overridable(
        "payments.developer_fee_percent",
        "Developer fee (%)",
        "Taken from what the developer receives on each release (0-50).",
    ),
    Overridable(
        "payments.client_fee_percent",
        "Client fee (%)",
        "Added on top of each milestone the client funds (0-50).",
    ),
    Overridable(
        "payments.auto_approve_days",
        "Auto-approve after (days)",
        "A submitted milestone the client does not answer is approved after this (1-365).",
    ),
    Overridable(
        "payments.payout_hold_days",
        "Payout hold (days)",
        "Released money stays pending this long before it can be paid out (0-90).",
    ),
    Overridable(
        "plugins.reviews.review_window_days",
        "Review window (days)",
        "Reviews are published when both parties wrote one or after this many days.",
    ),
    Overridable(
        "moderation.require_listing_approval",
        "Require listing approval",
        "New service listings wait for an administrator's approval before they are public.",
    ),
)


def _section_of(settings: Settings, site: Site, spec: Overridable) -> Any:
    if spec.plugin is not None:
        try:
            return site.plugins.settings_for(spec.plugin)
        except LookupError:
            return None
    return getattr(settings, spec.section)


class SiteSettings:
    """Overrides of one site: reading, validating, storing and applying them."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.base = site.settings
        """The settings from the file, before any override."""
        self.base_plugins: dict[str, Any] = {}
        for spec in OVERRIDABLE:
            if spec.plugin is not None:
                section = _section_of(site.settings, site, spec)
                if section is not None:
                    self.base_plugins[spec.plugin] = section
        self.overrides: dict[str, Any] = {}
        self._subscription: Any = None
        self._task: asyncio.Task[None] | None = None

    # -- what can be changed -------------------------------------------------------
    def available(self) -> list[Overridable]:
        """The overridable settings of this site (a plugin's only while it runs)."""
        found = []
        for spec in OVERRIDABLE:
            section = self.base_plugins.get(spec.plugin) if spec.plugin else getattr(self.base, spec.section)
            if section is not None and spec.field in msgspec.structs.asdict(section):
                found.append(spec)
        return found

    def default(self, spec: Overridable) -> Any:
        section = self.base_plugins[spec.plugin] if spec.plugin else getattr(self.base, spec.section)
        return getattr(section, spec.field)

    def value(self, spec: Overridable) -> Any:
        return self.overrides.get(spec.key, self.default(spec))

    # -- validating and storing ----------------------------------------------------
    def validate(self, changes: dict[str, Any]) -> dict[str, Any]:
        """``changes`` checked against the same bounds as the settings Structs; a null value
        means back to the file's default. 400 naming the first bad key."""
        known = {spec.key: spec for spec in self.available()}
        clean: dict[str, Any] = {}
        for key, value in changes.items():
            spec = known.get(key)
            if spec is None:
                raise field_error(key, f"`{key}` is not a setting admins can change.")
            if value is None:
                clean[key] = None
                continue
            base = self.base_plugins[spec.plugin] if spec.plugin else getattr(self.base, spec.section)
            data = msgspec.structs.asdict(base)
            data[spec.field] = value
            try:
                converted = msgspec.convert(data, type(base))
            except msgspec.ValidationError as exc:
                raise field_error(key, str(exc).split(" - at ")[0]) from None
            clean[key] = getattr(converted, spec.field)
        return clean

    async def load(self, session: AsyncSession) -> dict[str, Any]:
        """The stored overrides (unknown keys, e.g. of a plugin no longer running, ignored)."""
        known = {spec.key for spec in self.available()}
        rows = await session.execute(select(SiteSetting.key, SiteSetting.value))
        return {key: value for key, value in rows.all() if key in known}

    async def update(self, session: AsyncSession, actor_id: uuid.UUID, changes: dict[str, Any]) -> list[str]:
        """Store validated ``changes`` (None deletes an override), each audited with its old
        and new value. Returns the keys that changed."""
        clean = self.validate(changes)
        specs = {spec.key: spec for spec in self.available()}
        stored = {
            row.key: row
            for row in await session.scalars(
                select(SiteSetting).where(SiteSetting.key.in_(list(clean))).with_for_update()
            )
        }
        changed = []
        for key, value in clean.items():
            row = stored.get(key)
            before = row.value if row is not None else self.default(specs[key])
            after = value if value is not None else self.default(specs[key])
            if value is None:
                if row is None:
                    continue
                await session.delete(row)
            elif row is None:
                session.add(SiteSetting(key=key, value=value, updated_by=actor_id))
            else:
                if row.value == value:
                    continue
                row.value = value
                row.updated_by = actor_id
                row.updated_at = utcnow()
            changed.append(key)
            record(
                session,
                actor_id,
                "settings.update",
                "setting",
                key,
                data={"before": before, "after": after, "reset": value is None},
            )
        return changed

    # -- applying ------------------------------------------------------------------
    def apply(self, overrides: dict[str, Any]) -> None:
        """Make the running site use the file's settings with ``overrides`` on top."""
        sections: dict[str, dict[str, Any]] = {}
        plugins: dict[str, dict[str, Any]] = {}
        for spec in self.available():
            if spec.key not in overrides:
                continue
            target = plugins if spec.plugin else sections
            target.setdefault(spec.plugin or spec.section, {})[spec.field] = overrides[spec.key]
        replaced = {
            name: msgspec.structs.replace(getattr(self.base, name), **values)
            for name, values in sections.items()
        }
        self.site.settings = msgspec.structs.replace(self.base, **replaced)
        for plugin_id, base in self.base_plugins.items():
            self.site.plugins.replace_settings(
                plugin_id, msgspec.structs.replace(base, **plugins.get(plugin_id, {}))
            )
        self.overrides = dict(overrides)

    async def reload(self) -> None:
        async with self.site.db.reading() as session:
            overrides = await self.load(session)
        self.apply(overrides)

    # -- keeping every instance in step ---------------------------------------------
    @property
    def subject(self) -> str:
        return f"{self.site.events.prefix}.internal.settings.changed"

    async def changed(self) -> None:
        """After a committed change: apply it here, and tell the other instances."""
        await self.reload()
        nc = self.site.events.nc
        if nc is not None and nc.is_connected:
            try:
                await nc.publish(self.subject, b"{}")
            except Exception:
                log.warning("announcing a settings change failed; other instances reload within a minute")

    async def start(self) -> None:
        try:
            await self.reload()
        except Exception:
            log.warning("could not read site settings at start; using the file's until the next reload")
        nc = self.site.events.nc
        if nc is not None:
            self._subscription = await nc.subscribe(self.subject, cb=self._on_message)
        self._task = asyncio.get_running_loop().create_task(self._reload_forever())

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()

    async def _on_message(self, msg: Any) -> None:
        try:
            await self.reload()
        except Exception:
            log.exception("reloading site settings failed")

    async def _reload_forever(self) -> None:
        while True:
            await asyncio.sleep(RELOAD_SECONDS)
            try:
                await self.reload()
            except Exception:
                log.exception("reloading site settings failed; retrying")


def site_settings(site: Site) -> SiteSettings:
    """The site's :class:`SiteSettings` (made on first use)."""
    found = site.state.get(STATE_KEY)
    if found is None:
        found = site.state[STATE_KEY] = SiteSettings(site)
    return found  # type: ignore[no-any-return]

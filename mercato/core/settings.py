"""Site configuration: ``mercato.toml`` plus ``MERCATO_<SECTION>__<KEY>`` overrides.

Every section is a msgspec Struct that forbids unknown fields, so a misspelt key is a
startup error naming the key and the file it came from, never a silently ignored value.
Plugin tables (``[plugins.<id>]``) are kept raw here and validated against the Struct each
plugin declares once the plugins are loaded (see :mod:`mercato.core.plugins`).
"""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

CONFIG_FILENAME = "mercato.toml"
ENV_PREFIX = "MERCATO_"


class ConfigError(Exception):
    """The configuration cannot be used; the message says what to change, on one line."""


class _Section(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class SiteSettings(_Section):
    """``[site]``: who this marketplace is and where it keeps its files."""

    name: str = "mercato"
    """Shown in the page title, header and e-mails."""
    base_url: str = "http://127.0.0.1:8000"
    """The public address, used for absolute links in e-mails and OAuth redirects."""
    data_dir: str = "data"
    """Where the SQLite database, the embedded NATS store and uploads live (relative to the site folder)."""
    theme: str = "default"
    """A bundled theme name, or a path to a folder with ``templates/`` and ``static/``."""
    templates_dir: str = "templates"
    """The site's own template overrides (relative to the site folder); wins over plugins and theme."""
    reload_templates: bool = False
    """Check template files for changes on every use (``mercato run --reload`` turns it on)."""
    static_dir: str = "static"
    """The site's own static files (relative to the site folder)."""
    locale: str = "en"
    """Default locale for formatting money, numbers and dates."""
    secret_key: str = ""
    """Signs tokens and cookies. Empty: generated once and kept in ``<data_dir>/secret_key``."""


class DatabaseSettings(_Section):
    """``[database]``."""

    url: str = ""
    """SQLAlchemy async URL. Empty: SQLite at ``<data_dir>/mercato.db``."""
    echo: bool = False
    """Log every SQL statement (noisy; for debugging)."""
    pool_size: int = 20
    """Connections per process on PostgreSQL, kept open; requests beyond wait for one."""


class EventsSettings(_Section):
    """``[events]``: the NATS JetStream backbone."""

    nats_url: str = ""
    """``nats://host:port`` of a NATS server with JetStream. Empty: start an embedded nats-server."""
    stream: str = "MERCATO"
    """JetStream stream holding domain events."""
    subject_prefix: str = "mercato"
    """First token of every subject: ``<prefix>.<domain>.<event>`` and ``<prefix>.live.user.<id>``."""
    stream_replicas: int = 1
    """Stream replicas; 3 on a three-node NATS cluster."""
    stream_max_age_days: int = 30
    """How long JetStream keeps delivered events."""
    relay_sweep_seconds: float = 2.0
    """How often the outbox relay looks for rows another instance (or a crash) left behind."""
    relay_batch_size: int = 500
    """Outbox rows published per round trip."""
    max_deliver: int = 6
    """Attempts per event and handler before the event is given up (and logged as an error)."""
    backoff_seconds: list[float] = msgspec.field(default_factory=lambda: [1.0, 5.0, 30.0, 120.0, 600.0])
    """Delay before each redelivery after a handler failed."""
    ack_wait_seconds: float = 60.0
    """How long a handler may run before JetStream redelivers its event elsewhere."""


class ServerSettings(_Section):
    """``[server]``: defaults for ``mercato run``."""

    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8000
    workers: Annotated[int, msgspec.Meta(ge=1)] = 1


class WorkerSettings(_Section):
    """``[worker]``: background work (outbox relay, event consumers, timers)."""

    in_web: bool = True
    """Run background work inside each web process. Set false when ``mercato worker`` runs apart."""


class LoggingSettings(_Section):
    """``[logging]``."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    format: Literal["console", "json", "auto"] = "auto"
    """``console``, ``json``, or ``auto`` (console on a terminal, JSON otherwise)."""


class AccountsSettings(_Section):
    """``[accounts]``: sign-up, sessions and tokens."""

    require_verified_email: bool = True
    """Posting, bidding and money need a verified e-mail address (``mercato demo`` sets false)."""
    allow_registration: bool = True
    """Let anyone sign up. False: nobody can (password or provider); create accounts with
    ``mercato users create``."""
    access_token_minutes: Annotated[int, msgspec.Meta(ge=1, le=1440)] = 15
    """Lifetime of an API access token (JWT)."""
    refresh_token_days: Annotated[int, msgspec.Meta(ge=1)] = 30
    """How long an API session lasts after log-in; its refresh token rotates on every use."""
    session_days: Annotated[int, msgspec.Meta(ge=1)] = 14
    """How long a browser stays signed in after log-in."""
    verification_link_hours: Annotated[int, msgspec.Meta(ge=1)] = 48
    """How long an e-mail verification link works."""
    password_reset_minutes: Annotated[int, msgspec.Meta(ge=5)] = 60
    """How long a password reset link works (it works once)."""
    min_password_score: Annotated[int, msgspec.Meta(ge=0, le=4)] = 2
    """Lowest zxcvbn score (0-4) a new password needs; 0 and 1 are common or easily guessed."""
    login_attempts_per_minute: Annotated[int, msgspec.Meta(ge=1)] = 10
    """Failed and successful log-ins allowed per client address per minute."""
    login_attempts_per_account: Annotated[int, msgspec.Meta(ge=1)] = 5
    """Log-in attempts allowed per account per minute, from anywhere."""
    mails_per_hour: Annotated[int, msgspec.Meta(ge=1)] = 5
    """Verification and reset mails per account (or address asked for) per hour; a client
    address may ask for four times as many, for all accounts together."""
    registrations_per_hour: Annotated[int, msgspec.Meta(ge=1)] = 20
    """Sign-ups allowed per client address per hour."""
    trusted_proxies: list[str] = msgspec.field(default_factory=list)
    """Addresses of reverse proxies whose ``X-Forwarded-For`` names the real client."""


class MailSettings(_Section):
    """``[mail]``: how e-mail leaves the site."""

    backend: Literal["auto", "smtp", "file"] = "auto"
    """``smtp``; ``file`` (written to ``<data_dir>/mail`` and shown at ``/dev/mailbox``);
    ``auto``: ``smtp`` when ``host`` is set, else ``file``."""
    from_address: str = "mercato <noreply@localhost>"
    """The ``From:`` of every mail."""
    host: str = ""
    """SMTP server name."""
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 587
    username: str = ""
    password: str = ""
    security: Literal["starttls", "tls", "none"] = "starttls"
    """``starttls`` (port 587), ``tls`` (implicit TLS, port 465) or ``none`` (local relays only)."""
    timeout_seconds: float = 10.0
    dev_mailbox: bool = False
    """Show the ``file`` backend's mail at ``/dev/mailbox``: for trying a site on your own
    machine only, since anyone who can reach it can read every reset link."""


class UploadsSettings(_Section):
    """``[uploads]``: limits for files people send (avatars, portfolio images, attachments)."""

    max_image_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 5 * 1024 * 1024
    """Largest image upload, in bytes (larger: 413)."""
    max_image_pixels: Annotated[int, msgspec.Meta(ge=10_000)] = 25_000_000
    """Largest decoded image (width x height); guards against decompression bombs."""
    max_image_side: Annotated[int, msgspec.Meta(ge=64)] = 2048
    """Images are scaled down so neither side exceeds this when re-encoded."""
    max_attachment_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 10 * 1024 * 1024
    """Largest file attached to a project or a proposal, in bytes (larger: 413)."""


class PaymentsSettings(_Section):
    """``[payments]``: fees, holds and timers of contracts, milestones and payouts."""

    developer_fee_percent: Annotated[float, msgspec.Meta(ge=0, le=50)] = 10.0
    """The platform's fee on each release, taken from what the developer receives."""
    client_fee_percent: Annotated[float, msgspec.Meta(ge=0, le=50)] = 0.0
    """A fee the client pays on top of each milestone when funding it (0: none)."""
    auto_approve_days: Annotated[int, msgspec.Meta(ge=1, le=365)] = 14
    """A submitted milestone the client neither approves nor sends back is approved after this."""
    payout_hold_days: Annotated[int, msgspec.Meta(ge=0, le=90)] = 5
    """Released money stays pending this long before the developer can pay it out."""
    min_payout: Annotated[int, msgspec.Meta(ge=1)] = 1000
    """The smallest payout, in minor units of its currency (1000 is $10.00)."""
    default_gateway: str = "sandbox"
    """The payment gateway used when a request names none (``mercato plugins`` lists them)."""
    idempotency_key_hours: Annotated[int, msgspec.Meta(ge=24)] = 24
    """How long an ``Idempotency-Key`` and its stored response are kept."""


class ModerationSettings(_Section):
    """``[moderation]``: what admins check before others see it."""

    require_listing_approval: bool = False
    """Publishing a service listing waits for an admin's approval."""


class PluginsSettings(_Section):
    """``[plugins]``: which plugins run; ``[plugins.<id>]`` tables configure one each."""

    disabled: list[str] = msgspec.field(default_factory=list)
    """Plugin ids to switch off, built-ins included (``mercato plugins`` lists the ids)."""
    load_entry_points: bool = True
    """Load installed third-party plugins (entry point group ``mercato``)."""
    config: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    """Raw ``[plugins.<id>]`` tables; validated by each plugin's declared Struct at startup."""


class Settings(_Section):
    """The whole configuration of one site."""

    site: SiteSettings = msgspec.field(default_factory=SiteSettings)
    database: DatabaseSettings = msgspec.field(default_factory=DatabaseSettings)
    events: EventsSettings = msgspec.field(default_factory=EventsSettings)
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    worker: WorkerSettings = msgspec.field(default_factory=WorkerSettings)
    logging: LoggingSettings = msgspec.field(default_factory=LoggingSettings)
    accounts: AccountsSettings = msgspec.field(default_factory=AccountsSettings)
    mail: MailSettings = msgspec.field(default_factory=MailSettings)
    moderation: ModerationSettings = msgspec.field(default_factory=ModerationSettings)
    uploads: UploadsSettings = msgspec.field(default_factory=UploadsSettings)
    payments: PaymentsSettings = msgspec.field(default_factory=PaymentsSettings)
    plugins: PluginsSettings = msgspec.field(default_factory=PluginsSettings)
    site_dir: str = "."
    """The folder holding ``mercato.toml``; relative paths are resolved against it. Not a TOML key."""

    @property
    def site_path(self) -> Path:
        return Path(self.site_dir).resolve()

    @property
    def data_path(self) -> Path:
        return self.site_path / self.site.data_dir

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{self.data_path / 'mercato.db'}"

    def secret_key(self) -> str:
        """The configured secret, or one generated on first use and kept in the data dir."""
        if self.site.secret_key:
            return self.site.secret_key
        path = self.data_path / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_path.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker won the race: use its key
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key


_TOP_LEVEL_KEYS = {"site_dir"}


def load_settings(
    site_dir: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read ``<site_dir>/mercato.toml`` (if present), then apply environment overrides.

    ``overrides`` is a nested mapping applied last (used by tests and ``mercato demo``).
    Raises :class:`ConfigError` with a one-line message naming the bad key and its source.
    """
    env = os.environ if environ is None else environ
    site_path = Path(site_dir if site_dir is not None else env.get("MERCATO_SITE", ".")).resolve()
    config_file = site_path / CONFIG_FILENAME
    raw: dict[str, Any] = {}
    source = str(config_file)
    if config_file.exists():
        try:
            raw = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_file}: not valid TOML: {exc}") from None
    for key in _TOP_LEVEL_KEYS & raw.keys():
        raise ConfigError(f"{config_file}: unknown key `{key}`")

    env_sources: dict[tuple[str, ...], str] = {}
    for name, value in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        if any(not part for part in path):
            raise ConfigError(f"environment variable {name}: empty key segment")
        _set_path(raw, path, _parse_env_value(value))
        env_sources[path] = name
    if overrides:
        _deep_merge(raw, overrides)

    raw = _split_plugin_tables(raw, source, env_sources)
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_describe_validation_error(exc, source, env_sources)) from None
    settings.site_dir = str(site_path)
    return settings


def _parse_env_value(value: str) -> Any:
    """Environment values stay strings (converted to the key's type: ``8080``, ``true``),
    except TOML arrays and inline tables (``["a", "b"]``, ``{ a = 1 }``). So a string key
    keeps its text as is, even ``MERCATO_SITE__SECRET_KEY=123456``."""
    if not value.lstrip().startswith(("[", "{")):
        return value
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def _set_path(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = target
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"`{'.'.join(path)}`: `{part}` is a value, not a table")
        node = child
    node[path[-1]] = value


def _deep_merge(target: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping):
            if not isinstance(target.get(key), dict):
                target[key] = {}
            _deep_merge(target[key], value)
        else:
            target[key] = value


def _origin(path: tuple[str, ...], source: str, env_sources: dict[tuple[str, ...], str]) -> str:
    """The environment variable that set ``path`` (or something under it), else the file."""
    for env_path, name in env_sources.items():
        if env_path[: len(path)] == path:
            return name
    return source


def _split_plugin_tables(
    raw: dict[str, Any], source: str, env_sources: dict[tuple[str, ...], str]
) -> dict[str, Any]:
    plugins = raw.get("plugins")
    if not isinstance(plugins, dict):
        return raw
    known = set(PluginsSettings.__struct_fields__) - {"config"}
    section: dict[str, Any] = {"config": {}}
    for key, value in plugins.items():
        if key in known:
            section[key] = value
        elif isinstance(value, dict):
            section["config"][key] = value
        else:
            raise ConfigError(
                f"{_origin(('plugins', key), source, env_sources)}: unknown key `plugins.{key}` "
                f"(plugin settings go in a `[plugins.{key}]` table)"
            )
    return {**raw, "plugins": section}


_LOCATION = re.compile(r"- at `\$((?:\.\w+|\[\d+\])*)`")
_UNKNOWN = re.compile(r"Object contains unknown field `([^`]+)`")


def _describe_validation_error(
    exc: msgspec.ValidationError, source: str, env_sources: dict[tuple[str, ...], str]
) -> str:
    message = str(exc)
    where = _LOCATION.search(message)
    path = where.group(1).lstrip(".") if where else ""
    path = path.replace("plugins.config.", "plugins.")
    unknown = _UNKNOWN.search(message)
    if unknown:
        key = f"{path}.{unknown.group(1)}" if path else unknown.group(1)
        return f"{_origin(tuple(key.split('.')), source, env_sources)}: unknown key `{key}`"
    reason = message.split(" - at ")[0]
    return f"{_origin(tuple(path.split('.')), source, env_sources)}: `{path}`: {reason}"


def plugin_config_error(plugin_id: str, exc: msgspec.ValidationError, source: str) -> ConfigError:
    """A :class:`ConfigError` for a ``[plugins.<id>]`` table that its Struct rejected."""
    message = str(exc)
    unknown = _UNKNOWN.search(message)
    where = _LOCATION.search(message)
    path = (where.group(1).lstrip(".") if where else "").strip()
    prefix = f"plugins.{plugin_id}" + (f".{path}" if path else "")
    if unknown:
        return ConfigError(f"{source}: unknown key `{prefix}.{unknown.group(1)}`")
    return ConfigError(f"{source}: `{prefix}`: {message.split(' - at ')[0]}")

"""Writing a new site folder (``mercato init``, ``mercato demo``)."""

from __future__ import annotations

import json
from pathlib import Path

from mercato.core.settings import CONFIG_FILENAME

CONFIG_TEMPLATE = """\
# mercato.toml: the configuration of one marketplace.
# Every key can also be set by an environment variable MERCATO_<SECTION>__<KEY>,
# e.g. MERCATO_DATABASE__URL=postgresql+asyncpg://user@db/mercato
# A misspelt key stops startup with a message naming it.

[site]
name = {name}
# The public address, used in e-mails and OAuth redirects.
base_url = {base_url}
# SQLite database, embedded NATS store and uploads (relative to this folder).
data_dir = "data"
# A bundled theme name, or a folder with templates/ and static/.
theme = "default"
# Your own template and static overrides; they win over plugins and the theme.
templates_dir = "templates"
static_dir = "static"
locale = "en"
# Signs tokens and cookies. Empty: generated once into data/secret_key.
secret_key = ""

[database]
# Empty: SQLite in data/mercato.db. Production: postgresql+asyncpg://user:pass@host/db
url = ""

[events]
# Empty: mercato starts its own nats-server (JetStream) and stores in data/nats.
# Production: nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222
nats_url = ""
# stream_replicas = 3   # on a three-node JetStream cluster

[server]
host = "127.0.0.1"
port = 8000
workers = 1

[worker]
# Run the outbox relay and event consumers in the web processes. Set false when
# `mercato worker` runs them apart.
in_web = true

[accounts]
# Posting, bidding and money need a verified e-mail address.
require_verified_email = {require_verified_email}
# Let anyone sign up (false: only admins create accounts).
allow_registration = true
# access_token_minutes = 15
# refresh_token_days = 30
# session_days = 14
# Reverse proxies whose X-Forwarded-For names the real client (for rate limits).
# trusted_proxies = ["10.0.0.0/8"]

[mail]
from_address = "{name_plain} <noreply@localhost>"
# Empty host: mail is written to data/mail instead of being sent.
host = ""
# Show that mail at /dev/mailbox. Only on your own machine: anyone who can reach the
# site could read every password-reset link.
dev_mailbox = {dev_mailbox}
# port = 587
# username = ""
# password = ""
# security = "starttls"   # starttls, tls or none

[uploads]
# max_image_bytes = 5242880

[payments]
# The platform's fee on each release, and an optional fee clients pay when funding.
developer_fee_percent = 10.0
client_fee_percent = 0.0
# auto_approve_days = 14    # a submitted milestone is approved after this many days
# payout_hold_days = 5      # released money is pending this long before payout
# min_payout = 1000         # minor units (1000 is $10.00)
# default_gateway = "sandbox"

[logging]
level = "INFO"
# console, json, or auto (console on a terminal, JSON otherwise)
format = "auto"

[plugins]
# Plugin ids to switch off; `mercato plugins` lists them.
disabled = []

# Plugin settings go in their own table:
# [plugins.hello]
# greeting = "Hello"

# Sign-in with GitHub (an OAuth app; callback: <base_url>/auth/github/callback)
# [plugins.github_auth]
# client_id = ""
# client_secret = ""

# Sign-in with Google (callback: <base_url>/auth/google/callback)
# [plugins.google_auth]
# client_id = ""
# client_secret = ""

# Any OpenID Connect provider: Keycloak, Auth0, Okta, Authentik…
# (callback: <base_url>/auth/<id>/callback)
# [plugins.oidc_auth.providers.company]
# label = "Company SSO"
# discovery_url = "https://sso.example.com/realms/main/.well-known/openid-configuration"
# client_id = ""
# client_secret = ""
"""


def write_config(
    folder: Path, *, name: str = "mercato", demo: bool = False, base_url: str = "http://127.0.0.1:8000"
) -> Path:
    """Write a commented ``mercato.toml`` (and the override folders) into ``folder``. A demo
    site skips e-mail verification and shows its mail at ``/dev/mailbox``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "templates").mkdir(exist_ok=True)
    (folder / "static").mkdir(exist_ok=True)
    target = folder / CONFIG_FILENAME
    text = CONFIG_TEMPLATE.format(
        name=json.dumps(name),
        name_plain=name.replace('"', ""),
        base_url=json.dumps(base_url),
        require_verified_email=str(not demo).lower(),
        dev_mailbox=str(demo).lower(),
    )
    target.write_text(text, encoding="utf-8")
    return target

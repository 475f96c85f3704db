"""Built-in plugin ``password_auth``: sign-up and log-in with e-mail and password, password
reset by e-mailed link, and password change. Disable it for a single-sign-on-only site.

Hashing is argon2id and new passwords must pass the strength policy (see
:mod:`mercato.core.security.passwords`). Log-in answers the same for an unknown address and
a wrong password, and is rate limited per client address and per account on every instance.
"""

from __future__ import annotations

from typing import Any

from mercato import hookimpl
from mercato.core.site import Site
from mercato.plugins.password_auth.pages import PAGE_ROUTES
from mercato.plugins.password_auth.routes import PasswordAuthController


@hookimpl
def register_routes(site: Site) -> list[Any]:
    return [PasswordAuthController, *PAGE_ROUTES]

"""Pytest fixtures for the OAuth2 / OpenID Connect test server (:mod:`tests.oauth_server`).

A test module enables them with::

    pytest_plugins = ["tests.oauth_fixtures"]

``oauth_server`` is session-scoped: one server for the whole run. It is shared, so a test
that flips a switch (``down``, ``deny``, ``next_user``…) calls ``oauth_server.reset()``
first, or uses the function-scoped ``fresh_oauth_server``, which resets before and after
(and empties :func:`mercato.core.security.oidc.clear_caches`: discovery and JWKS are cached
per process by URL, so a "provider down" test would otherwise still see a cached document).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mercato.core.security.oidc import clear_caches
from tests.oauth_server import OAuthTestServer


@pytest.fixture(scope="session")
def oauth_server() -> Iterator[OAuthTestServer]:
    """The running test authorization server (``oauth_server.base_url``)."""
    server = OAuthTestServer().start()
    yield server
    server.stop()


@pytest.fixture
def fresh_oauth_server(oauth_server: OAuthTestServer) -> Iterator[OAuthTestServer]:
    """``oauth_server`` with every switch at its default, and put back after the test.

    It also empties mercato's per-process cache of discovery documents and JWKS, so the
    test starts with providers that have fetched nothing yet.
    """
    oauth_server.reset()
    clear_caches()
    yield oauth_server
    oauth_server.reset()
    clear_caches()

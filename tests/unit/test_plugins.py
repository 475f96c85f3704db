"""The plugin manager: built-ins, entry points, disabling, settings, errors, tracing."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click
import msgspec
import pytest

from mercato import hookimpl
from mercato.core.navigation import NavItem
from mercato.core.plugins import (
    BUILTIN_PLUGINS,
    PluginError,
    build_plugin_manager,
    builtin_id,
    describe_plugins,
)
from mercato.core.settings import ConfigError
from mercato.core.site import Site


def install_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, module: str,
                        source: str) -> None:
    """Make ``module`` importable and announce it as a ``mercato`` entry point called ``name``."""
    (tmp_path / f"{module}.py").write_text(source)
    dist = tmp_path / f"{module}-0.3.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.3.0\n")
    (dist / "entry_points.txt").write_text(f"[mercato]\n{name} = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module, raising=False)


def test_builtins_are_registered_under_short_ids(make_settings: Any) -> None:
    pm = build_plugin_manager(make_settings())
    ids = {builtin_id(name) for name in BUILTIN_PLUGINS}
    assert ids <= {name for name, _ in pm.list_name_plugin()}
    assert len(ids) == len(BUILTIN_PLUGINS), "built-in ids must be unique"


def test_disabled_plugins_are_not_loaded(make_settings: Any) -> None:
    pm = build_plugin_manager(make_settings(plugins={"disabled": ["pages"]}))
    assert not pm.has_plugin("pages")
    assert pm.is_blocked("pages")
    assert pm.has_plugin("health")


def test_entry_point_plugin_is_loaded_with_its_version(
    make_settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_entry_point(tmp_path, monkeypatch, "shout", "mercato_shout", (
        "from mercato import hookimpl\n"
        "@hookimpl\n"
        "def register_nav_items(site):\n"
        "    return []\n"
    ))
    pm = build_plugin_manager(make_settings(plugins={"load_entry_points": True}))
    rows = {row["id"]: row for row in describe_plugins(pm)}
    assert rows["shout"]["version"] == "0.3.0"
    assert rows["shout"]["builtin"] is False
    assert rows["shout"]["hooks"] == ["register_nav_items"]
    assert rows["health"]["builtin"] is True


def test_plugin_that_fails_to_import_names_itself(
    make_settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_entry_point(tmp_path, monkeypatch, "broken", "mercato_broken", "raise RuntimeError('boom')\n")
    with pytest.raises(PluginError) as info:
        build_plugin_manager(make_settings(plugins={"load_entry_points": True}))
    message = str(info.value)
    assert "`broken`" in message
    assert "RuntimeError: boom" in message
    assert "disabled" in message
    pm = build_plugin_manager(make_settings(plugins={"load_entry_points": True, "disabled": ["broken"]}))
    assert not pm.has_plugin("broken")


def test_misspelt_hook_is_rejected(make_settings: Any) -> None:
    class Typo:
        @hookimpl
        def register_route(self, site: Any) -> list[Any]:
            return []

    with pytest.raises(PluginError, match="`typo` implements an unknown hook"):
        build_plugin_manager(make_settings(), extra=[("typo", Typo())])


class Greeter:
    class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
        greeting: str = "Hello"
        times: int = 1

    @hookimpl
    def register_settings(self) -> dict[str, type[msgspec.Struct]]:
        return {"greeter": self.Config}


def test_register_settings_validates_the_plugin_table(make_settings: Any) -> None:
    settings = make_settings(plugins={"greeter": {"greeting": "Hi", "times": "3"}})
    site = Site(settings, pm=build_plugin_manager(settings, extra=[("greeter", Greeter())]))
    assert site.plugin_settings("greeter") == Greeter.Config(greeting="Hi", times=3)


def test_plugin_settings_default_when_table_is_absent(make_settings: Any) -> None:
    settings = make_settings()
    site = Site(settings, pm=build_plugin_manager(settings, extra=[("greeter", Greeter())]))
    assert site.plugin_settings("greeter") == Greeter.Config()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"greting": "x"}, "unknown key `plugins.greeter.greting`"),
        ({"times": "many"}, r"`plugins\.greeter\.times`: Expected `int`"),
    ],
)
def test_bad_plugin_settings_name_the_key(make_settings: Any, table: dict[str, Any], message: str) -> None:
    settings = make_settings(plugins={"greeter": table})
    pm = build_plugin_manager(settings, extra=[("greeter", Greeter())])
    with pytest.raises(ConfigError, match=message):
        Site(settings, pm=pm)


def test_table_for_a_plugin_that_is_not_installed(make_settings: Any) -> None:
    with pytest.raises(ConfigError, match=r"`\[plugins\.nosuch\]` configures a plugin that is not installed"):
        Site(make_settings(plugins={"nosuch": {"a": 1}}))


def test_nav_items_are_ordered_and_later_keys_win(make_settings: Any) -> None:
    class Nav:
        @hookimpl
        def register_nav_items(self, site: Any) -> list[NavItem]:
            return [NavItem(key="b", label="B", href="/b", order=20),
                    NavItem(key="a", label="A", href="/a", order=10)]

    class Override:
        @hookimpl
        def register_nav_items(self, site: Any) -> list[NavItem]:
            return [NavItem(key="b", label="Bee", href="/bee", order=5)]

    settings = make_settings()
    site = Site(settings, pm=build_plugin_manager(settings, extra=[("nav", Nav()), ("override", Override())]))
    assert [item.label for item in site.plugins.nav_items(site) if item.role is None] == ["Bee", "A"]


async def test_lifecycle_hooks_may_be_async(make_settings: Any) -> None:
    calls: list[str] = []

    class Lifecycle:
        @hookimpl
        async def on_startup(self, site: Any) -> None:
            calls.append("startup")

        @hookimpl
        def on_shutdown(self, site: Any) -> None:
            calls.append("shutdown")

    settings = make_settings()
    site = Site(settings, pm=build_plugin_manager(settings, extra=[("life", Lifecycle())]))
    await site.plugins.on_startup(site)
    await site.plugins.on_shutdown(site)
    assert calls == ["startup", "shutdown"]


def test_register_commands_are_collected(make_settings: Any) -> None:
    @click.command("hello-cmd")
    def hello_cmd() -> None:
        """Say hello."""

    class Commands:
        @hookimpl
        def register_commands(self) -> list[click.Command]:
            return [hello_cmd]

    pm = build_plugin_manager(make_settings(), extra=[("commands", Commands())])
    site = Site(make_settings(), pm=pm)
    assert hello_cmd in site.plugins.commands()


def test_trace_plugins_logs_hook_calls(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MERCATO_TRACE_PLUGINS", "1")
    settings = make_settings()
    site = Site(settings)
    with caplog.at_level(logging.INFO):
        site.plugins.routes(site)
    assert any("register_routes" in record.getMessage() for record in caplog.records)


def test_entry_point_clashing_with_a_builtin_id_is_an_error(
    make_settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_entry_point(tmp_path, monkeypatch, "health", "mercato_health2", "")
    with pytest.raises(PluginError, match="`health`.*already taken"):
        build_plugin_manager(make_settings(plugins={"load_entry_points": True}))
    pm = build_plugin_manager(make_settings(plugins={"load_entry_points": True, "disabled": ["health"]}))
    assert not pm.has_plugin("health")


def test_a_hook_that_raises_is_reported_with_its_plugin(make_settings: Any) -> None:
    class Faulty:
        @hookimpl
        def register_routes(self, site: Any) -> list[Any]:
            return [1 / 0]

    settings = make_settings()
    site = Site(settings, pm=build_plugin_manager(settings, extra=[("faulty", Faulty())]))
    with pytest.raises(PluginError, match=r"plugin `faulty` failed in `register_routes`: ZeroDivisionError"):
        site.plugins.routes(site)


async def test_failing_startup_names_the_plugin_and_shutdown_failures_are_isolated(
    make_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cleaned: list[str] = []

    class Fragile:
        @hookimpl
        async def on_startup(self, site: Any) -> None:
            raise RuntimeError("no licence key")

        @hookimpl
        def on_shutdown(self, site: Any) -> None:
            raise RuntimeError("already gone")

    class Tidy:
        @hookimpl
        def on_shutdown(self) -> None:
            cleaned.append("tidy")

    settings = make_settings()
    pm = build_plugin_manager(settings, extra=[("tidy", Tidy()), ("fragile", Fragile())])
    site = Site(settings, pm=pm)
    with pytest.raises(PluginError, match="`fragile` failed in `on_startup`: RuntimeError: no licence"):
        await site.plugins.on_startup(site)
    await site.plugins.on_shutdown(site)
    assert cleaned == ["tidy"]
    assert "on_shutdown hook failed" in caplog.text


async def test_demo_data_hooks_run_in_order_and_a_failure_names_its_plugin(make_settings: Any) -> None:
    seeded: list[str] = []

    class Reviews:
        @hookimpl
        async def seed_demo_data(self, site: Any) -> None:
            seeded.append("reviews")

    class Chat:
        @hookimpl
        def seed_demo_data(self) -> None:
            seeded.append("chat")

    class Broken:
        @hookimpl
        def seed_demo_data(self) -> None:
            raise RuntimeError("no demo for you")

    settings = make_settings()
    site = Site(settings, pm=build_plugin_manager(settings, builtins=(), extra=[("reviews", Reviews()),
                                                                              ("chat", Chat())]))
    await site.plugins.seed_demo_data(site)
    assert seeded == ["reviews", "chat"]
    broken = Site(settings, pm=build_plugin_manager(settings, builtins=(), extra=[("broken", Broken())]))
    with pytest.raises(PluginError, match="`broken` failed in `seed_demo_data`: RuntimeError: no demo"):
        await broken.plugins.seed_demo_data(broken)


def test_report_subjects_are_collected_by_kind_and_a_kind_is_claimed_once(make_settings: Any) -> None:
    from mercato.core.moderation import ReportSubject

    async def describe(session: Any, subject_id: Any, viewer_id: Any) -> None:
        return None

    async def hide(session: Any, subject_id: Any, hidden: bool) -> None:
        return None

    class Gigs:
        def __init__(self, kind: str) -> None:
            self.kind = kind

        @hookimpl
        def register_report_subjects(self, site: Any) -> list[ReportSubject]:
            return [ReportSubject(kind=self.kind, label="a gig", describe=describe, hide=hide)]

    settings = make_settings()
    site = Site(settings, pm=build_plugin_manager(settings, builtins=(), extra=[("gigs", Gigs("gig"))]))
    assert list(site.plugins.report_subjects(site)) == ["gig"]
    clash = Site(settings, pm=build_plugin_manager(settings, builtins=(), extra=[
        ("gigs", Gigs("gig")), ("more_gigs", Gigs("gig"))]))
    with pytest.raises(PluginError, match="two plugins register the report subject `gig`"):
        clash.plugins.report_subjects(clash)

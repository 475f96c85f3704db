"""Template lookup: site folder → plugin folders → theme → default, and ``default:``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jinja2
import pytest

from mercato import hookimpl
from mercato.core.plugins import build_plugin_manager
from mercato.core.settings import ConfigError
from mercato.core.site import Site


class TemplatePlugin:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @hookimpl
    def register_template_dirs(self, site: Any) -> list[Path]:
        return [self.folder]

    @hookimpl
    def register_static_dirs(self, site: Any) -> list[Path]:
        return [self.folder / "static"]

    @hookimpl
    def extra_template_vars(self, site: Any, request: Any, template_name: str) -> dict[str, Any]:
        return {"from_plugin": f"plugin saw {template_name}"}

    @hookimpl
    def prepare_jinja_env(self, site: Any, env: jinja2.Environment) -> None:
        env.filters["shout"] = lambda value: str(value).upper() + "!"


def make_site(make_settings: Any, site_dir: Path, plugin_dir: Path | None = None, **overrides: Any) -> Site:
    settings = make_settings(site_dir=site_dir, **overrides)
    extra = [("tpl", TemplatePlugin(plugin_dir))] if plugin_dir else []
    return Site(settings, pm=build_plugin_manager(settings, extra=extra))


async def test_plugin_template_overrides_the_theme_and_extends_the_default(
    make_settings: Any, tmp_path: Path
) -> None:
    plugin_dir = tmp_path / "plugin"
    plugin_dir.mkdir()
    (plugin_dir / "index.html").write_text(
        '{% extends "default:index.html" %}{% block content %}<p id="plugin">{{ from_plugin }}'
        ' {{ "hi"|shout }}</p>{{ super() }}{% endblock %}'
    )
    site = make_site(make_settings, tmp_path / "site", plugin_dir)
    html = await site.templates.render("index.html")
    assert '<p id="plugin">plugin saw index.html HI!</p>' in html
    assert "How it works" in html  # the default theme's content is still there


async def test_site_folder_wins_over_plugins(make_settings: Any, tmp_path: Path) -> None:
    plugin_dir = tmp_path / "plugin"
    plugin_dir.mkdir()
    (plugin_dir / "index.html").write_text("from plugin")
    site_dir = tmp_path / "site"
    (site_dir / "templates").mkdir(parents=True)
    (site_dir / "templates" / "index.html").write_text(
        '{% extends "default:base.html" %}{% block content %}from the site folder{% endblock %}'
    )
    site = make_site(make_settings, site_dir, plugin_dir)
    html = await site.templates.render("index.html")
    assert "from the site folder" in html
    assert "from plugin" not in html
    assert "<footer" in html


def test_static_dirs_follow_the_same_order(make_settings: Any, tmp_path: Path) -> None:
    plugin_dir = tmp_path / "plugin"
    (plugin_dir / "static").mkdir(parents=True)
    site_dir = tmp_path / "site"
    (site_dir / "static").mkdir(parents=True)
    site = make_site(make_settings, site_dir, plugin_dir)
    dirs = site.static_dirs()
    assert dirs[0] == site_dir / "static"
    assert dirs[1] == plugin_dir / "static"
    assert dirs[-1].parts[-3:] == ("themes", "default", "static")


def test_a_theme_folder_can_be_selected(make_settings: Any, tmp_path: Path) -> None:
    theme = tmp_path / "site" / "mytheme"
    (theme / "templates").mkdir(parents=True)
    (theme / "templates" / "index.html").write_text("my theme")
    site = make_site(make_settings, tmp_path / "site", site={"theme": "mytheme"})
    assert site.templates.env.get_template("index.html").render() == "my theme"
    # anything the theme lacks comes from the default theme
    assert site.templates.env.get_template("error.html")


def test_unknown_theme_is_a_config_error(make_settings: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="site.theme"):
        make_site(make_settings, tmp_path, site={"theme": "nope"})


@pytest.mark.parametrize("reload", [False, True])
def test_templates_are_read_once_unless_reloading_is_on(
    make_settings: Any, tmp_path: Path, reload: bool
) -> None:
    site_dir = tmp_path / "site"
    (site_dir / "templates").mkdir(parents=True)
    page = site_dir / "templates" / "note.html"
    page.write_text("first {{ word }}")
    site = make_site(make_settings, site_dir, site={"reload_templates": reload})
    templates = site.templates
    assert templates.env.get_template("note.html").render(word="look") == "first look"
    assert templates.fragment("note.html", "k", {"word": "kept"}) == "first kept"

    page.write_text("second {{ word }}")
    os.utime(page, (page.stat().st_atime + 5, page.stat().st_mtime + 5))
    expected = "second" if reload else "first"
    assert templates.env.get_template("note.html").render(word="look") == f"{expected} look"
    # A fragment is kept per key (its values are not looked at) unless reloading is on.
    kept = "second other" if reload else "first kept"
    assert templates.fragment("note.html", "k", {"word": "other"}) == kept
    assert templates.fragment("note.html", "k2", {"word": "other"}) == f"{expected} other"

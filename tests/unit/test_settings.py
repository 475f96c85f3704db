"""mercato.toml and MERCATO_* overrides become strict Structs; mistakes name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mercato.core.settings import ConfigError, load_settings


def write(folder: Path, text: str) -> Path:
    path = folder / "mercato.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_config_file(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    assert settings.site.name == "mercato"
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'data' / 'mercato.db'}"
    assert settings.events.nats_url == ""
    assert settings.plugins.disabled == []


def test_toml_values_are_read(tmp_path: Path) -> None:
    write(tmp_path, '[site]\nname = "DevMarket"\n[server]\nport = 9000\n[plugins]\ndisabled = ["pages"]\n')
    settings = load_settings(tmp_path, environ={})
    assert settings.site.name == "DevMarket"
    assert settings.server.port == 9000
    assert settings.plugins.disabled == ["pages"]


def test_environment_overrides_the_file_with_typed_values(tmp_path: Path) -> None:
    write(tmp_path, '[server]\nport = 9000\n')
    settings = load_settings(tmp_path, environ={
        "MERCATO_SERVER__PORT": "9100",
        "MERCATO_SITE__NAME": "My shop",
        "MERCATO_WORKER__IN_WEB": "false",
        "MERCATO_PLUGINS__DISABLED": '["pages", "health"]',
        "MERCATO_DATABASE__URL": "postgresql+asyncpg://u@db/m",
        "MERCATO_TEST_DATABASE_URL": "ignored: no double underscore",
    })
    assert settings.server.port == 9100
    assert settings.site.name == "My shop"
    assert settings.worker.in_web is False
    assert settings.plugins.disabled == ["pages", "health"]
    assert settings.database_url == "postgresql+asyncpg://u@db/m"


def test_unknown_key_names_the_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[site]\nnmae = "x"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, environ={})
    assert str(info.value) == f"{path}: unknown key `site.nmae`"


def test_unknown_section_names_it(tmp_path: Path) -> None:
    path = write(tmp_path, "[sever]\nport = 1\n")
    with pytest.raises(ConfigError, match="unknown key `sever`") as info:
        load_settings(tmp_path, environ={})
    assert str(path) in str(info.value)


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    write(tmp_path, '[server]\nport = "eighty"\n')
    with pytest.raises(ConfigError, match=r"`server\.port`: Expected `int`, got `str`"):
        load_settings(tmp_path, environ={})


def test_unknown_environment_key_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MERCATO_SITE__NMAE: unknown key `site.nmae`"):
        load_settings(tmp_path, environ={"MERCATO_SITE__NMAE": "x"})


def test_invalid_toml_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "[site\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(tmp_path, environ={})


def test_plugin_tables_are_kept_for_their_plugin(tmp_path: Path) -> None:
    write(tmp_path, '[plugins]\ndisabled = []\n[plugins.hello]\ngreeting = "Hi"\n')
    settings = load_settings(tmp_path, environ={"MERCATO_PLUGINS__HELLO__LOUD": "true"})
    assert settings.plugins.config == {"hello": {"greeting": "Hi", "loud": "true"}}


def test_plain_value_under_plugins_is_rejected_with_a_hint(tmp_path: Path) -> None:
    write(tmp_path, "[plugins]\nhello = 1\n")
    with pytest.raises(ConfigError, match=r"\[plugins\.hello\]"):
        load_settings(tmp_path, environ={})


def test_generated_secret_key_is_kept(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    key = settings.secret_key()
    assert len(key) >= 40
    assert load_settings(tmp_path, environ={}).secret_key() == key
    assert (tmp_path / "data" / "secret_key").stat().st_mode & 0o777 == 0o600


def test_string_keys_keep_their_text_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={"MERCATO_SITE__SECRET_KEY": "123456",
                                                "MERCATO_SITE__NAME": "true"})
    assert settings.site.secret_key == "123456"
    assert settings.site.name == "true"


def test_unknown_environment_section_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="^MERCATO_FOO__BAR: unknown key `foo`"):
        load_settings(tmp_path, environ={"MERCATO_FOO__BAR": "1"})


@pytest.mark.parametrize(
    ("text", "key"),
    [('[logging]\nlevel = "LOUD"\n', "logging.level"), ('[logging]\nformat = "xml"\n', "logging.format"),
     ("[server]\nworkers = 0\n", "server.workers"), ("[server]\nport = 70000\n", "server.port")],
)
def test_out_of_range_values_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    write(tmp_path, text)
    with pytest.raises(ConfigError, match=f"`{key}`"):
        load_settings(tmp_path, environ={})

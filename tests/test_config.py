"""Where host and token come from: arguments > environment > ~/.databrickscfg profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbx_magic import DatabricksClient
from dbx_magic.api.config import Config
from dbx_magic.errors import ConfigError

from .conftest import TOKEN

PROFILES = """\
[DEFAULT]
host = adb-1111111111111111.1.azuredatabricks.net
token = default-token-AAA

[prod]
host = https://adb-2222222222222222.2.azuredatabricks.net/
token = prod-token-BBB

[hostonly]
host = https://adb-3333333333333333.3.azuredatabricks.net
"""


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "databrickscfg"
    path.write_text(PROFILES)
    return path


def env(cfg: Path, **extra: str) -> dict[str, str]:
    return {"DATABRICKS_CONFIG_FILE": str(cfg), **extra}


def test_arguments_win(cfg):
    c = Config.resolve(
        host="https://adb-9.9.azuredatabricks.net",
        token="arg",
        env=env(cfg, DATABRICKS_HOST="https://env", DATABRICKS_TOKEN="envtok"),
    )
    assert (c.host, c.token, c.source) == ("https://adb-9.9.azuredatabricks.net", "arg", "arguments")


def test_environment_beats_the_file(cfg):
    c = Config.resolve(env=env(cfg, DATABRICKS_HOST="adb-4.4.azuredatabricks.net", DATABRICKS_TOKEN="envtok"))
    assert (c.host, c.token, c.source) == ("https://adb-4.4.azuredatabricks.net", "envtok", "environment")


def test_default_profile_with_scheme_added(cfg):
    c = Config.resolve(env=env(cfg))
    assert c.host == "https://adb-1111111111111111.1.azuredatabricks.net"
    assert c.token == "default-token-AAA" and c.profile == "DEFAULT"


def test_named_profile_and_trailing_slash(cfg):
    c = Config.resolve(profile="prod", env=env(cfg))
    assert (c.host, c.token, c.profile) == (
        "https://adb-2222222222222222.2.azuredatabricks.net",
        "prod-token-BBB",
        "prod",
    )


def test_profile_from_environment_variable(cfg):
    c = Config.resolve(env=env(cfg, DATABRICKS_CONFIG_PROFILE="prod"))
    assert c.token == "prod-token-BBB"


def test_a_named_profile_wins_over_the_environment(cfg):
    c = Config.resolve(
        profile="prod",
        env=env(cfg, DATABRICKS_HOST="https://adb-5.5.azuredatabricks.net", DATABRICKS_TOKEN="envtok"),
    )
    assert c.token == "prod-token-BBB"


def test_environment_fills_what_the_arguments_lack(cfg):
    c = Config.resolve(host="adb-6.6.azuredatabricks.net", env=env(cfg, DATABRICKS_TOKEN="envtok"))
    assert (c.host, c.token) == ("https://adb-6.6.azuredatabricks.net", "envtok")
    assert c.source == "arguments, environment"


def test_unknown_profile_lists_the_profiles_found(cfg):
    with pytest.raises(ConfigError, match=r"'staging' is not in .*profiles found: DEFAULT, prod, hostonly"):
        Config.resolve(profile="staging", env=env(cfg))


def test_missing_token_says_what_to_set_and_lists_profiles(cfg):
    with pytest.raises(
        ConfigError,
        match=r"No Databricks token configured: set DATABRICKS_HOST and DATABRICKS_TOKEN.*profiles in .*: DEFAULT, prod, hostonly",
    ):
        Config.resolve(profile="hostonly", env=env(cfg))


def test_nothing_configured_at_all(tmp_path):
    with pytest.raises(
        ConfigError, match=r"No Databricks host and token configured.*no profiles in .*%dbx_sandbox"
    ):
        Config.resolve(env={"DATABRICKS_CONFIG_FILE": str(tmp_path / "missing")})


def test_broken_profile_file(tmp_path):
    path = tmp_path / "cfg"
    path.write_text("this is not ini\n[x\n")
    with pytest.raises(ConfigError, match="not valid INI"):
        Config.resolve(profile="x", env={"DATABRICKS_CONFIG_FILE": str(path)})


@pytest.mark.parametrize(
    ("host", "match"),
    [
        ("https://", "not a workspace URL"),
        ("ftp://adb-1.1.azuredatabricks.net", "not a workspace URL"),
        ("https://adb 1.azuredatabricks.net", "not a workspace URL"),
        ("https://adb-1.1.azuredatabricks.net/some/path", "has a path"),
        ("https://adb-1.1.azuredatabricks.net:notaport", "malformed port"),
        ("   ", "host is empty"),
    ],
)
def test_bad_hosts_are_refused(host, match, tmp_path):
    with pytest.raises(ConfigError, match=match):
        Config.resolve(host=host, token="t", env={"DATABRICKS_CONFIG_FILE": str(tmp_path / "none")})


def test_loopback_http_is_accepted():
    assert Config.resolve(host="http://127.0.0.1:8123", token="t", env={}).host == "http://127.0.0.1:8123"


def test_token_is_masked_in_repr(cfg):
    c = Config.resolve(host="h.example.net", token=TOKEN, env=env(cfg))
    assert TOKEN not in repr(c) and "***" in repr(c) and TOKEN not in str(c)


def test_client_from_config_uses_the_chain(cfg, monkeypatch):
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(cfg))
    monkeypatch.delenv("DATABRICKS_HOST", raising=False)
    monkeypatch.delenv("DATABRICKS_TOKEN", raising=False)
    client = DatabricksClient.from_config(profile="prod")
    assert client.host == "https://adb-2222222222222222.2.azuredatabricks.net"
    assert "prod-token-BBB" not in repr(client)

"""Config: every key documented, env overrides, errors that name the key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from bot.config import EXAMPLE_CONFIG, ConfigError, config_from_dict, load_config


def test_example_config_loads_with_dev_chat_on_and_sqlite() -> None:
    config = load_config(EXAMPLE_CONFIG, env={})
    assert config.dev.enabled
    assert config.database.url.startswith("sqlite+aiosqlite")


def test_every_key_in_the_example_has_a_comment() -> None:
    lines = EXAMPLE_CONFIG.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines):
        if re.match(r"^[a-z_]+\s*=", line):
            documented = "#" in line or lines[n - 1].lstrip().startswith("#")
            assert documented, f"config.example.toml line {n + 1} has no comment: {line}"


def test_example_documents_every_known_section() -> None:
    raw = tomllib.loads(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    assert {"server", "database", "bot", "log", "dev", "wechat", "outbox"} <= set(raw)


def test_secret_from_environment_wins() -> None:
    config = config_from_dict(
        {"wechat": {"mp": {"app_secret": "in-file"}}},
        env={"UNIONBOT_WECHAT_MP_APP_SECRET": "from-env", "UNIONBOT_SERVER_PORT": "9090"},
    )
    assert config.wechat.mp.app_secret == "from-env"
    assert config.server.port == 9090


@pytest.mark.parametrize(
    ("raw", "env", "key"),
    [
        ({"server": {"port": "eighty"}}, {}, "server.port"),
        ({"server": {"port": 70000}}, {}, "server.port"),
        ({"server": {"prot": 80}}, {}, "server.prot"),
        ({"database": {"url": "mysql://x"}}, {}, "database.url"),
        ({"wechat": {"mp": {"enabled": True}}}, {}, "wechat.mp.token"),
        (
            {
                "wechat": {
                    "work": {
                        "enabled": True,
                        "token": "t",
                        "corp_id": "c",
                        "encoding_aes_key": "short",
                    }
                }
            },
            {},
            "wechat.work.encoding_aes_key",
        ),
        ({}, {"UNIONBOT_SERVER_PORT": "x"}, "server.port"),
        ({"log": {"level": "LOUD"}}, {}, "log.level"),
        ({"outbox": {"rate_limits": {"robot": "fast"}}}, {}, "outbox.rate_limits.robot"),
        # The outbox paces every send, not only the broadcasts: its limits moved there.
        ({"broadcasts": {"rate_limits": {"robot": "20/60"}}}, {}, "broadcasts.rate_limits"),
    ],
)
def test_wrong_values_name_the_key(raw: dict[str, object], env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw, env=env)
    assert str(err.value).startswith(key)


def test_relative_sqlite_path_resolves_against_the_config_folder(tmp_path: Path) -> None:
    from bot.storage.db import database_url

    (tmp_path / "conf").mkdir()
    file = tmp_path / "conf" / "my.toml"
    file.write_text('[database]\nurl = "sqlite+aiosqlite:///var/x.db"\n', encoding="utf-8")
    config = load_config(file, env={})
    assert database_url(config).endswith(str(tmp_path / "conf" / "var" / "x.db"))


def test_bad_toml_is_a_config_error(tmp_path: Path) -> None:
    file = tmp_path / "bad.toml"
    file.write_text("[server\nport = 1", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(file, env={})

"""The unionbot command as a deployer runs it: a real process, real files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def unionbot(
    *args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("UNIONBOT_")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "handlers.cli", *args],
        cwd=cwd,
        env=environ,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def write_config(folder: Path) -> Path:
    content = PROJECT / "content"
    file = folder / "config.toml"
    file.write_text(
        '[database]\nurl = "sqlite+aiosqlite:///var/bot.db"\nmigrate_on_start = true\n'
        f'[bot]\ncontent_dirs = ["{content}"]\n[log]\nlevel = "WARNING"\n',
        encoding="utf-8",
    )
    return file


def test_db_upgrade_then_ask_answers_with_the_menu(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    up = unionbot("db", "upgrade", "--config", str(config), cwd=PROJECT)
    assert up.returncode == 0, up.stderr
    assert (tmp_path / "var" / "bot.db").exists()  # relative to the config file's folder
    ask = unionbot("ask", "你好", "--config", str(config), cwd=PROJECT)
    assert ask.returncode == 0, ask.stderr
    assert "请回复数字选择服务" in ask.stdout


def test_chat_keeps_a_conversation(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    out = unionbot("chat", "--config", str(config), cwd=PROJECT, stdin="留言\n厂里没有热水\nexit\n")
    assert out.returncode == 0, out.stderr
    assert "请直接输入您想对工会说的话" in out.stdout
    assert "收到您的留言：「厂里没有热水」" in out.stdout


def test_config_from_environment_variable(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    out = unionbot("check-config", cwd=tmp_path, env={"UNIONBOT_CONFIG": str(config)})
    assert out.returncode == 0, out.stderr
    assert str(config) in out.stdout


def test_bad_config_stops_with_the_key_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text('[server]\nport = "eighty"\n', encoding="utf-8")
    out = unionbot("check-config", cwd=tmp_path)  # ./config.toml is picked up
    assert out.returncode == 2
    assert "server.port" in out.stderr
    assert "Traceback" not in out.stderr


def test_secret_in_environment_is_not_printed(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    out = unionbot(
        "check-config",
        "--config",
        str(config),
        cwd=PROJECT,
        env={
            "UNIONBOT_WECHAT_MP_APP_SECRET": "very-secret-value",
            "UNIONBOT_DATABASE_URL": "postgresql+asyncpg://u:pw123@127.0.0.1/x",
        },
    )
    assert out.returncode == 0, out.stderr
    assert "very-secret-value" not in out.stdout and "pw123" not in out.stdout


def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    # `unionbot check-config | head -0`: the reader is gone before anything is written.
    config = write_config(tmp_path)
    with subprocess.Popen(
        [sys.executable, "-m", "handlers.cli", "check-config", "--config", str(config)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        stderr = process.stderr.read().decode()
        assert process.wait(timeout=120) == 141
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr

"""``unionbot broadcasts`` and ``unionbot members import`` as an operator runs them: real
processes on a real database, a running service sending what the command queued."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from tests.conftest import PROJECT
from tests.fakes.wechat_server import APP_SEND, FakeWeChat
from tests.scheduler.conftest import (
    AppMaker,
    Clock,
    broadcast_config,
    recipients,
    write_broadcasts,
)

ROSTER = """姓名,手机号,生日,openid,userid
张三,13800138000,1988-07-03,,zhangsan
李四,139 0013 9000,1990/7/4,,lisi
王五,12345,1991-01-01,,wangwu
赵六,,,,
"""

NOTICE = """
[[broadcast]]
id = "notice"
title = "活动通知"
schedule = { cron = "0 10 1 1 *" }
text = "{{ event.title }}"
audience = { members = true, robots = ["group"] }
event = { title = "工会驿站开放" }
"""


def write_config(
    folder: Path, db_url: str, api_base: str = "http://127.0.0.1:9", *content: Path
) -> Path:
    file = folder / "config.toml"
    dirs = ", ".join(f'"{d}"' for d in (PROJECT / "content", *content))
    file.write_text(
        f'[database]\nurl = "{db_url}"\nmigrate_on_start = true\n'
        f'[bot]\ncontent_dirs = [{dirs}]\n[log]\nlevel = "WARNING"\n'
        f'[wechat.work]\ncorp_id = "ww_test_corp"\nagent_id = 1000002\nsecret = "work_secret"\n'
        f'api_base = "{api_base}"\n',
        encoding="utf-8",
    )
    return file


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("UNIONBOT_")}


def unionbot(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "handlers.cli", *args, "--config", str(config)],
        cwd=PROJECT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_roster_import_list_preview_pause_and_cli_added_broadcasts(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    (tmp_path / "roster.csv").write_text(ROSTER, encoding="utf-8")
    imported = unionbot(config, "members", "import", str(tmp_path / "roster.csv"))
    assert imported.returncode == 0, imported.stderr
    assert "members: 2 added, 0 updated, 2 rows skipped" in imported.stdout
    assert "line 4: phone '12345' is not an 11-digit mobile number" in imported.stdout
    again = unionbot(config, "members", "import", str(tmp_path / "roster.csv"))
    assert "members: 0 added, 2 updated" in again.stdout

    listing = unionbot(config, "broadcasts", "list")
    assert listing.returncode == 0, listing.stderr
    assert "medicine-survey " in listing.stdout and "cron 30 19 * * 2,4" in listing.stdout

    preview = unionbot(config, "broadcasts", "preview", "birthday", "--at", "2026-07-03 09:00")
    assert preview.returncode == 0, preview.stderr
    assert "(workers now: 1)" in preview.stdout  # 张三, born on 3 July
    assert "张师傅，生日快乐" in preview.stdout

    assert unionbot(config, "broadcasts", "pause", "birthday").stdout.strip() == "birthday: paused"
    assert " paused " in _line(unionbot(config, "broadcasts", "list").stdout, "birthday")
    unionbot(config, "broadcasts", "resume", "birthday")
    assert " on " in _line(unionbot(config, "broadcasts", "list").stdout, "birthday")

    added = unionbot(
        config,
        *("broadcasts", "add", "--id", "union-day", "--at", "2027-05-01T09:00"),
        *("--text", "{{ event.title }}：{{ date }}", "--members", "--event", "title=劳动节"),
        *("--topic", "活动通知"),
    )
    assert added.returncode == 0, added.stderr
    assert "next 2027-05-01 09:00" in added.stdout
    assert "劳动节：5月1日" in unionbot(config, "broadcasts", "preview", "union-day").stdout
    wrong = unionbot(
        config, *("broadcasts", "add", "--id", "x", "--cron", "8 * *", "--text", "x", "--members")
    )
    assert wrong.returncode == 2 and "schedule.cron" in wrong.stderr
    clash = unionbot(
        config,
        *("broadcasts", "add", "--id", "birthday", "--cron", "0 9 * * *", "--text", "x"),
        "--members",
    )
    assert clash.returncode == 1 and "is defined in" in clash.stderr
    assert unionbot(config, "broadcasts", "remove", "union-day").returncode == 0
    assert "union-day" not in unionbot(config, "broadcasts", "list").stdout
    unknown = unionbot(config, "broadcasts", "runs", "nope")
    assert unknown.returncode == 1 and "no broadcast 'nope'" in unknown.stderr


def _line(text: str, start: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(start + " "))


async def test_run_now_is_sent_by_the_running_service(
    tmp_path: Path, fake_wechat: FakeWeChat, clock: Clock, start_app: AppMaker
) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    content = tmp_path / "content"
    (content / "broadcasts").mkdir(parents=True)
    # No quiet hours: the command runs on the real clock, whatever the time of day.
    write_broadcasts(content, NOTICE)
    config = write_config(tmp_path, db_url, fake_wechat.base_url, content)
    (tmp_path / "roster.csv").write_text(ROSTER, encoding="utf-8")
    assert unionbot(config, "members", "import", str(tmp_path / "roster.csv")).returncode == 0
    clock.set(datetime.now(UTC))  # the command's clock is the real one
    await start_app(broadcast_config(db_url, fake_wechat.base_url, content), clock)

    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "handlers.cli", "broadcasts", "run-now", "notice", "--wait"),
        *("--config", str(config)),
        cwd=PROJECT,
        env=environment(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 0, err.decode()
    assert "run #1: 3 recipients" in out.decode()  # two members and the group
    assert "done: sent 2, no such robot in wechat.robot.keys 1" in out.decode()
    assert sorted(recipients(fake_wechat, APP_SEND)) == ["lisi", "zhangsan"]
    runs = await asyncio.to_thread(unionbot, config, "broadcasts", "runs", "notice")
    assert "manual   done" in runs.stdout

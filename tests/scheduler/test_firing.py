"""Cron firing, one run per firing, catch-up inside and outside the grace window."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from bot.keys import SERVICES
from handlers.cli import with_app
from scheduler import runs
from scheduler.setup import SCHEDULER
from tests.fakes.wechat_server import WEBHOOK_SEND, FakeWeChat
from tests.scheduler.conftest import (
    SH,
    AppMaker,
    Clock,
    broadcast_config,
    engine_of,
    runs_of,
    settled,
    sh,
    wait_until,
    write_broadcasts,
)


async def test_the_0800_survey_prompt_goes_to_the_group_once(
    db_url: str, fake_wechat: FakeWeChat, content: Path, clock: Clock, start_app: AppMaker
) -> None:
    client = await start_app(broadcast_config(db_url, fake_wechat.base_url, content), clock)
    engine = engine_of(client)
    clock.set(sh(2026, 7, 3, 7, 59, 30))
    assert (await engine.tick()).fired == []
    clock.set(sh(2026, 7, 3, 8, 0, 0))
    report = await engine.tick()
    again = await engine.tick()  # the APScheduler job and the periodic check both look
    assert len(report.fired) == 1 and again.fired == []
    await wait_until(lambda: settled(client), what="the prompt is sent")
    sent = fake_wechat.sent(WEBHOOK_SEND)
    assert [s.query["key"] for s in sent] == ["robot-group"]
    assert "7月3日 购药需求调查" in sent[0].json["text"]["content"]
    [run] = await runs_of(client, "medicine-survey")
    assert (run.trigger, run.form_id) == ("schedule", "medicine")
    assert run.scheduled_at == sh(2026, 7, 3, 8, 0)


async def _yesterday_sent(
    db_url: str, fake: FakeWeChat, content: Path, clock: Clock, start_app: AppMaker
) -> None:
    """The service ran on Thursday and sent Thursday's prompt, then went down."""
    client = await start_app(broadcast_config(db_url, fake.base_url, content), clock)
    clock.set(sh(2026, 7, 2, 7, 0))
    await engine_of(client).tick()
    clock.set(sh(2026, 7, 2, 8, 0))
    await engine_of(client).tick()
    await wait_until(lambda: settled(client))
    await client.close()


async def test_a_prompt_missed_while_down_is_sent_on_start_within_grace(
    db_url: str, fake_wechat: FakeWeChat, content: Path, clock: Clock, start_app: AppMaker
) -> None:
    await _yesterday_sent(db_url, fake_wechat, content, clock, start_app)
    clock.set(sh(2026, 7, 3, 8, 40))  # back 40 minutes after Friday's 08:00
    config = broadcast_config(db_url, fake_wechat.base_url, content, broadcasts__enabled=True)
    client = await start_app(config, clock)
    scheduler = client.app[SCHEDULER]
    await wait_until(lambda: scheduler.ticks >= 1, what="the start-up check")
    await wait_until(lambda: settled(client))
    runs = await runs_of(client, "medicine-survey")
    assert [(r.scheduled_at, r.trigger) for r in runs] == [
        (sh(2026, 7, 2, 8, 0), "schedule"),
        (sh(2026, 7, 3, 8, 0), "catch-up"),
    ]
    assert len(fake_wechat.sent(WEBHOOK_SEND)) == 2
    # The jobs were rebuilt from the definitions, under their own ids.
    job = scheduler.aps.get_job("broadcast:medicine-survey")
    assert job is not None and job.next_run_time.hour == 8


async def test_a_short_command_neither_fires_nor_skips_a_push(
    db_url: str, fake_wechat: FakeWeChat, content: Path, clock: Clock, start_app: AppMaker
) -> None:
    # `unionbot ask`, `chat` and `cases` start the app for a moment: were the scheduler on,
    # its start-up check would catch up or skip the firings since the last run.
    await _yesterday_sent(db_url, fake_wechat, content, clock, start_app)
    config = broadcast_config(db_url, fake_wechat.base_url, content, broadcasts__enabled=True)

    async def linger(app: web.Application) -> None:
        await asyncio.sleep(1.0)  # far longer than the scheduler's first check takes

    await with_app(config, linger)
    client = await start_app(broadcast_config(db_url, fake_wechat.base_url, content), clock)
    assert [r.scheduled_at for r in await runs_of(client, "medicine-survey")] == [
        sh(2026, 7, 2, 8, 0)
    ]
    assert len(fake_wechat.sent(WEBHOOK_SEND)) == 1


async def test_a_prompt_missed_beyond_grace_is_recorded_as_skipped_not_sent(
    db_url: str, fake_wechat: FakeWeChat, content: Path, clock: Clock, start_app: AppMaker
) -> None:
    await _yesterday_sent(db_url, fake_wechat, content, clock, start_app)
    clock.set(sh(2026, 7, 3, 9, 30))  # 90 minutes late, the grace is 60
    config = broadcast_config(db_url, fake_wechat.base_url, content, broadcasts__enabled=True)
    client = await start_app(config, clock)
    await wait_until(lambda: client.app[SCHEDULER].ticks >= 1)
    runs = await runs_of(client, "medicine-survey")
    assert [(r.scheduled_at, r.status) for r in runs] == [
        (sh(2026, 7, 2, 8, 0), "done"),
        (sh(2026, 7, 3, 8, 0), "skipped"),
    ]
    assert runs[1].reason == "missed: 90 min late, grace is 60 min"
    assert len(fake_wechat.sent(WEBHOOK_SEND)) == 1


async def test_several_missed_firings_send_one_catch_up(
    db_url: str, fake_wechat: FakeWeChat, content: Path, clock: Clock, start_app: AppMaker
) -> None:
    write_broadcasts(
        content,
        """
[[broadcast]]
id = "water"
title = "喝水提醒"
schedule = { every = "10m" }
text = "{{ time }} 记得喝水"
audience = { robots = ["volunteers"] }
""",
    )
    client = await start_app(broadcast_config(db_url, fake_wechat.base_url, content), clock)
    engine = engine_of(client)
    clock.set(sh(2026, 7, 3, 10, 59))
    await engine.tick()  # the service is up before 11:00
    clock.set(sh(2026, 7, 3, 11, 0, 30))
    await engine.tick()  # fires 11:00
    clock.set(sh(2026, 7, 3, 11, 45))  # 11:10 … 11:40 went by unnoticed
    report = await engine.tick()
    assert len(report.fired) == 1
    runs = await runs_of(client, "water")
    assert [(f"{r.scheduled_at.astimezone(SH):%H:%M}", r.status != "skipped") for r in runs] == [
        ("11:00", True),
        ("11:10", False),
        ("11:20", False),
        ("11:30", False),
        ("11:40", True),
    ]
    assert runs[1].reason == "superseded by a later firing"
    await wait_until(lambda: settled(client))
    texts = [s.json["text"]["content"] for s in fake_wechat.sent(WEBHOOK_SEND)]
    assert texts == ["11:00 记得喝水", "11:40 记得喝水"]


async def test_paused_broadcast_is_skipped_until_resumed(
    db_url: str, fake_wechat: FakeWeChat, content: Path, clock: Clock, start_app: AppMaker
) -> None:
    client = await start_app(broadcast_config(db_url, fake_wechat.base_url, content), clock)
    engine = engine_of(client)
    clock.set(sh(2026, 7, 2, 7, 0))
    await engine.tick()
    async with client.app[SERVICES].sessions.begin() as session:
        await runs.set_paused(session, "medicine-survey", True, "test", clock())
    clock.set(sh(2026, 7, 2, 8, 0))
    await engine.tick()
    async with client.app[SERVICES].sessions.begin() as session:
        await runs.set_paused(session, "medicine-survey", False, "test", clock())
    clock.set(sh(2026, 7, 3, 8, 0))
    await engine.tick()
    statuses = [(r.status, r.reason) for r in await runs_of(client, "medicine-survey")]
    assert statuses[0] == ("skipped", "paused")
    assert statuses[1][0] in ("sending", "done")

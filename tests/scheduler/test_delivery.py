"""Deliveries through the outbox: WeChat's rate limits, retries of temporary errors, permanent
errors recorded once, and every recipient once across a crash and with two instances."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.keys import OUTBOX, SERVICES
from bot.storage.models import Outbox
from scheduler import audiences, delivery, runs
from scheduler.setup import ENGINE
from tests.fakes.wechat_server import (
    APP_SEND,
    CUSTOM_SEND,
    WEBHOOK_SEND,
    FakeWeChat,
)
from tests.scheduler.conftest import (
    AppMaker,
    Clock,
    add_workers,
    broadcast_config,
    engine_of,
    outbox_rows,
    recipients,
    runs_of,
    settled,
    sh,
    wait_until,
    write_broadcasts,
)

MEMBERS_AT_11 = """
[[broadcast]]
id = "notice"
title = "活动通知"
schedule = { cron = "0 11 * * *" }
text = "{{ recipient.name }}，{{ date }}工会活动通知"
audience = { members = true }
"""

GROUP_PING = """
[[broadcast]]
id = "ping"
title = "群通知"
schedule = { cron = "0 12 * * *" }
text = "群通知 {{ time }}"
audience = { robots = ["group"] }
"""


@pytest.fixture
async def limited_wechat() -> AsyncIterator[FakeWeChat]:
    """WeCom's real limit on the fake: 20 messages a minute per robot, 45009 beyond."""
    fake = FakeWeChat(robot_rate=(20, 60))
    await fake.start()
    yield fake
    await fake.close()


async def _fire_at_11(client: object, clock: Clock) -> list[int]:
    engine = engine_of(client)  # type: ignore[arg-type]
    clock.set(sh(2026, 7, 3, 10, 59))
    await engine.tick()
    clock.set(sh(2026, 7, 3, 11, 0))
    return (await engine.tick()).fired


async def test_group_robot_gets_no_more_than_20_a_minute(
    db_url: str, limited_wechat: FakeWeChat, content: Path, clock: Clock, start_app: AppMaker
) -> None:
    write_broadcasts(content, GROUP_PING)
    client = await start_app(broadcast_config(db_url, limited_wechat.base_url, content), clock)
    engine = engine_of(client)
    for _ in range(25):  # 25 manual pushes to one group in a row
        await engine.run_now("ping")
    await wait_until(lambda: limited_wechat.accepted(WEBHOOK_SEND) == 20)
    await asyncio.sleep(0.3)  # nothing more goes out in this minute …
    assert limited_wechat.calls(WEBHOOK_SEND) == 20  # … and nothing was refused with 45009
    rows = await outbox_rows(client)
    held = [r for r in rows if r.status == "pending"]
    assert len(held) == 5
    # Held, not failed: due again when the oldest of the 20 leaves WeCom's minute.
    assert all(r.attempts == 0 and r.last_error is None for r in held)
    assert all(
        timedelta(seconds=55) < r.next_attempt_at - clock() < timedelta(seconds=62) for r in held
    )


async def test_robot_rate_is_kept_over_time(
    db_url: str, content: Path, clock: Clock, start_app: AppMaker
) -> None:
    fake = FakeWeChat(robot_rate=(5, 1.0))  # the same rule, scaled down to a second
    await fake.start()
    try:
        write_broadcasts(content, GROUP_PING)
        config = broadcast_config(
            db_url, fake.base_url, content, outbox__rate_limits={"robot": "5/1"}
        )
        client = await start_app(config, clock)
        for _ in range(12):
            await engine_of(client).run_now("ping")
        await wait_until(lambda: fake.accepted(WEBHOOK_SEND) == 12, within=15)
        assert fake.calls(WEBHOOK_SEND) == 12  # no 45009 on the way
        times = sorted(r.at for r in fake.sent(WEBHOOK_SEND))
        assert all(times[i + 5] - times[i] >= 1.0 for i in range(len(times) - 5))
    finally:
        await fake.close()


async def test_temporary_errors_are_retried_with_backoff(
    db_url: str, fake_wechat: FakeWeChat, content: Path, clock: Clock, start_app: AppMaker
) -> None:
    write_broadcasts(content, MEMBERS_AT_11)
    config = broadcast_config(
        db_url, fake_wechat.base_url, content, outbox__http_timeout_seconds=0.5
    )
    client = await start_app(config, clock)
    await add_workers(client, 1)
    fake_wechat.fail_next(APP_SEND, -1)  # system busy
    fake_wechat.fail_next(APP_SEND, 45009)  # frequency limit
    fake_wechat.http_error_next(APP_SEND, 502)
    # No answer in time. The slow call is the first; it takes no other fault as long as the
    # three quick failures are over before it wakes (5 s leaves room on a loaded machine; at
    # 1 s a slow retry let it take the 45009 and the call count came out one short).
    fake_wechat.delay_next(APP_SEND, 5.0)
    await _fire_at_11(client, clock)
    await wait_until(lambda: settled(client), within=15)
    [row] = await outbox_rows(client)
    assert (row.status, row.attempts) == ("sent", 5)
    assert fake_wechat.calls(APP_SEND) == 5
    assert recipients(fake_wechat) == ["w000"]
    # Had the timed-out call arrived after all, WeCom would drop the retry as a duplicate.
    assert fake_wechat.sent(APP_SEND)[0].json["enable_duplicate_check"] == 1


@pytest.mark.parametrize("errcode", [43004, 45015, 45047])
async def test_permanent_errors_are_recorded_and_not_retried(
    db_url: str,
    fake_wechat: FakeWeChat,
    content: Path,
    clock: Clock,
    start_app: AppMaker,
    errcode: int,
) -> None:
    write_broadcasts(content, MEMBERS_AT_11)
    client = await start_app(broadcast_config(db_url, fake_wechat.base_url, content), clock)
    await add_workers(client, 2, channel="mp", seen=sh(2026, 7, 3, 9, 0))
    fake_wechat.fail_next(CUSTOM_SEND, errcode)
    [run_id] = await _fire_at_11(client, clock)
    await wait_until(lambda: settled(client))
    rows = await outbox_rows(client)
    assert sorted((r.status, r.attempts) for r in rows) == [("failed", 1), ("sent", 1)]
    [failed] = [r for r in rows if r.status == "failed"]
    assert str(errcode) in (failed.last_error or "")
    assert fake_wechat.calls(CUSTOM_SEND) == 2
    [run] = [r for r in await runs_of(client, "notice") if r.id == run_id]
    async with client.app[SERVICES].sessions() as session:
        stats = await runs.run_stats(session, run)
    assert (stats.count("sent"), stats.count("failed")) == (1, 1)


async def test_official_account_followers_outside_48_hours_are_not_sent_to(
    db_url: str, fake_wechat: FakeWeChat, content: Path, clock: Clock, start_app: AppMaker
) -> None:
    write_broadcasts(content, MEMBERS_AT_11)
    client = await start_app(broadcast_config(db_url, fake_wechat.base_url, content), clock)
    await add_workers(client, 1, prefix="recent", channel="mp", seen=sh(2026, 7, 2, 12, 0))
    await add_workers(client, 1, prefix="old", channel="mp", seen=sh(2026, 6, 20, 12, 0))
    [run_id] = await _fire_at_11(client, clock)
    await wait_until(lambda: settled(client))
    assert recipients(fake_wechat, CUSTOM_SEND) == ["recent000"]
    [run] = [r for r in await runs_of(client, "notice") if r.id == run_id]
    async with client.app[SERVICES].sessions() as session:
        stats = await runs.run_stats(session, run)
    assert stats.counts == {"sent": 1, audiences.OUTSIDE_WINDOW: 1}


async def test_killed_in_the_middle_every_recipient_gets_it_once(
    db_url: str,
    fake_wechat: FakeWeChat,
    content: Path,
    clock: Clock,
    start_app: AppMaker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first process fired at 11:00, wrote a third of the audience and sent part of it,
    then died: its lease on the run and on the row it was sending run out."""
    monkeypatch.setattr(delivery, "CHUNK", 10)
    write_broadcasts(content, MEMBERS_AT_11)
    config = broadcast_config(db_url, fake_wechat.base_url, content, outbox__enabled=False)
    first = await start_app(config, clock)
    await add_workers(first, 30)
    engine = first.app[ENGINE]
    clock.set(sh(2026, 7, 3, 10, 59))
    await engine.tick()
    clock.set(sh(2026, 7, 3, 11, 0))
    item, moment, now = engine.get("notice"), sh(2026, 7, 3, 11, 0), clock()
    async with first.app[SERVICES].sessions.begin() as session:
        run_id = await runs.create_run(
            session,
            broadcast_id="notice",
            scheduled_at=moment,
            trigger="schedule",
            status="expanding",
            instance="dead-instance",
            now=now,
        )
    assert run_id is not None
    async with first.app[SERVICES].sessions() as session:
        expanded = await audiences.expand(session, item, moment, now, engine.tz)
    due = delivery.pace(expanded.recipients, now - timedelta(seconds=1), engine.limiter)
    text_for = engine._composers["notice"].for_run(engine._context(item, moment))
    rows = [delivery.Row(r, text_for(r), d) for r, d in zip(expanded.recipients, due, strict=True)]
    async with first.app[SERVICES].sessions.begin() as session:
        await delivery.write_chunk(session, run_id, rows[:10], "text", now)
    sent = await first.app[OUTBOX].work_once(limit=4)  # four went out …
    assert sent == 4
    async with first.app[SERVICES].sessions.begin() as session:  # … one was on its way
        await session.execute(
            update(Outbox)
            .where(Outbox.dedup_key == delivery.dedup_key(run_id, expanded.recipients[4]))
            .values(status="sending", attempts=1, locked_until=now + timedelta(seconds=60))
        )
    await first.close()

    clock.set(sh(2026, 7, 3, 11, 2))  # both leases have run out
    second = await start_app(broadcast_config(db_url, fake_wechat.base_url, content), clock)
    report = await engine_of(second).tick()
    assert report.resumed == [run_id] and report.fired == []
    await wait_until(lambda: settled(second))
    got = Counter(recipients(fake_wechat))
    assert len(got) == 30 and set(got.values()) == {1}
    [run] = await runs_of(second, "notice")
    assert run.recipients == 30


async def test_two_instances_on_one_database_make_one_run(
    db_url: str, fake_wechat: FakeWeChat, content: Path, clock: Clock, start_app: AppMaker
) -> None:
    write_broadcasts(content, MEMBERS_AT_11)
    config = broadcast_config(db_url, fake_wechat.base_url, content)
    a = await start_app(config, clock)
    b = await start_app(config, clock)
    await add_workers(a, 40)
    await add_workers(a, 1, prefix="g", member=False)  # not a member: not in the audience
    clock.set(sh(2026, 7, 3, 10, 59))
    await asyncio.gather(engine_of(a).tick(), engine_of(b).tick())
    clock.set(sh(2026, 7, 3, 11, 0))
    ra, rb = await asyncio.gather(engine_of(a).tick(), engine_of(b).tick())
    assert len(ra.fired) + len(rb.fired) == 1
    await wait_until(lambda: settled(a))
    got = Counter(recipients(fake_wechat))
    assert len(got) == 40 and set(got.values()) == {1}
    async with a.app[SERVICES].sessions() as session:
        total = len((await session.execute(select(Outbox.id))).all())
    assert total == 40
    assert len(await runs_of(a, "notice")) == 1


async def test_a_send_that_timed_out_after_reaching_wecom_is_not_received_twice(
    db_url: str, fake_wechat: FakeWeChat, content: Path, clock: Clock, start_app: AppMaker
) -> None:
    """WeCom took the message but answered after our timeout: the outbox cannot know, sends it
    again, and WeCom's duplicate check (asked for on every broadcast) keeps the copy back."""
    write_broadcasts(content, MEMBERS_AT_11)
    config = broadcast_config(
        db_url,
        fake_wechat.base_url,
        content,
        outbox__http_timeout_seconds=0.2,
        outbox__backoff_seconds=0.1,
    )
    client = await start_app(config, clock)
    await add_workers(client, 3)
    fake_wechat.delay_next(APP_SEND, 0.6)
    await _fire_at_11(client, clock)
    await wait_until(lambda: settled(client))
    # The slow first call and its retry: whichever WeCom saw first is the one delivered.
    await wait_until(
        lambda: fake_wechat.accepted(APP_SEND) + fake_wechat.duplicates_dropped(APP_SEND) == 4
    )
    assert sorted(Counter(recipients(fake_wechat)).values()) == [1, 1, 1]
    assert fake_wechat.duplicates_dropped(APP_SEND) == 1
    assert fake_wechat.repeats(APP_SEND) == 0
    assert {r.status for r in await outbox_rows(client)} == {"sent"}

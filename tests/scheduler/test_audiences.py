"""Who gets a push: topic subscribers, members minus those who unsubscribed, today's
birthdays, and the survey's non-respondents (the nudge)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import update

from bot.keys import SERVICES
from bot.storage.models import User
from scheduler import audiences, runs, surveys
from tests.fakes.wechat_server import APP_SEND, WEBHOOK_SEND, FakeWeChat
from tests.scheduler.conftest import (
    AppMaker,
    Clock,
    add_workers,
    broadcast_config,
    engine_of,
    recipients,
    runs_of,
    settled,
    sh,
    wait_until,
    work_says,
    write_broadcasts,
)


async def _members(client: object, names: list[str]) -> None:
    async with client.app[SERVICES].sessions.begin() as session:  # type: ignore[attr-defined]
        await session.execute(
            update(User).where(User.external_id.in_(names)).values(member_status="member")
        )


async def test_workers_subscribe_and_unsubscribe_in_chat_and_it_is_honoured(
    db_url: str, fake_wechat: FakeWeChat, content: Path, clock: Clock, start_app: AppMaker
) -> None:
    client = await start_app(broadcast_config(db_url, fake_wechat.base_url, content), clock)
    answer = await work_says(client, "li", "订阅 直播", 9001)
    assert "已订阅：直播" in answer
    assert "已订阅：直播、夜校" in await work_says(client, "wang", "订阅直播、夜校", 9002)
    await work_says(client, "zhao", "订阅 直播", 9003)
    answer = await work_says(client, "zhao", "退订 直播", 9004)
    assert "已退订：直播" in answer and "您现在的订阅：无" in answer
    assert "✅ 夜校" in await work_says(client, "wang", "我的订阅", 9005)
    unknown = await work_says(client, "li", "订阅 跳舞", 9007)
    assert "没有找到「跳舞」" in unknown and "直播、夜校、送清凉、活动通知" in unknown
    # Summer coupons go to every member; li said 退订 送清凉.
    await _members(client, ["li", "wang", "zhao"])
    await work_says(client, "li", "退订 送清凉", 9008)

    engine = engine_of(client)
    clock.set(sh(2026, 7, 2, 19, 0))  # a Thursday
    await engine.tick()
    clock.set(sh(2026, 7, 2, 19, 30))
    await engine.tick()  # the shipped live-stream notice: the group and 直播 subscribers
    await wait_until(lambda: settled(client))
    assert sorted(recipients(fake_wechat)) == ["li", "wang"]
    assert [s.query["key"] for s in fake_wechat.sent(WEBHOOK_SEND)] == ["robot-group"]
    personal = fake_wechat.sent(APP_SEND)[0].json["text"]["content"]
    assert "劳动法律小课堂" in personal and "退订 直播" in personal
    assert "退订" not in fake_wechat.sent(WEBHOOK_SEND)[0].json["text"]["content"]

    clock.set(sh(2026, 7, 6, 10, 0))  # a Monday in July: 送清凉
    await engine.tick()
    await wait_until(lambda: settled(client))
    summer = [s.json["touser"] for s in fake_wechat.sent(APP_SEND) if "送清凉" in str(s.json)]
    assert sorted(summer) == ["wang", "zhao"]


async def test_birthday_greetings_go_to_members_born_today(
    db_url: str, fake_wechat: FakeWeChat, content: Path, clock: Clock, start_app: AppMaker
) -> None:
    client = await start_app(broadcast_config(db_url, fake_wechat.base_url, content), clock)
    await add_workers(client, 2, prefix="today", birthday="1988-07-03")
    await add_workers(client, 1, prefix="tomorrow", birthday="1990-07-04")
    await add_workers(client, 1, prefix="guest", birthday="1985-07-03", member=False)
    await add_workers(client, 1, prefix="nobirthday")
    engine = engine_of(client)
    clock.set(sh(2026, 7, 3, 8, 50))
    await engine.tick()
    clock.set(sh(2026, 7, 3, 9, 0))
    await engine.tick()
    await wait_until(lambda: settled(client))
    sent = fake_wechat.sent(APP_SEND)
    assert sorted(s.json["touser"] for s in sent) == ["today000", "today001"]
    assert sent[0].json["text"]["content"].startswith("工友")
    assert "生日快乐" in sent[0].json["text"]["content"]


async def test_29_february_birthdays_are_greeted_on_the_28th_in_common_years(
    db_url: str, fake_wechat: FakeWeChat, content: Path, clock: Clock, start_app: AppMaker
) -> None:
    client = await start_app(broadcast_config(db_url, fake_wechat.base_url, content), clock)
    [leap] = await add_workers(client, 1, prefix="leap", birthday="2000-02-29")
    async with client.app[SERVICES].sessions() as session:
        assert await audiences.birthday_members(session, date(2027, 2, 28)) == {leap}
        assert await audiences.birthday_members(session, date(2028, 2, 28)) == set()
        assert await audiences.birthday_members(session, date(2028, 2, 29)) == {leap}


SURVEY = """
[[broadcast]]
id = "canteen"
title = "食堂满意度调查"
schedule = { cron = "0 11 * * 5" }
text = "{{ recipient.name }}，本周食堂满意度调查开始了，回复「满意」或提意见即可。"
audience = { members = true }
form = "feedback"

[[broadcast]]
id = "canteen-nudge"
title = "食堂调查提醒"
schedule = { cron = "0 16 * * 5" }
text = "{{ recipient.name }}，还差您的回复（{{ survey.answered }}/{{ survey.audience }} 人已回复）"
audience = { non_respondents = "canteen" }
"""


async def test_survey_nudge_goes_to_those_who_have_not_answered(
    db_url: str, fake_wechat: FakeWeChat, content: Path, clock: Clock, start_app: AppMaker
) -> None:
    write_broadcasts(content, SURVEY)
    client = await start_app(broadcast_config(db_url, fake_wechat.base_url, content), clock)
    await add_workers(client, 5)
    engine = engine_of(client)
    clock.set(sh(2026, 7, 3, 10, 0))
    await engine.tick()
    clock.set(sh(2026, 7, 3, 11, 0))
    [prompt_id] = (await engine.tick()).fired
    await wait_until(lambda: settled(client))
    for n, user in enumerate(["w001", "w003", "w004"]):  # three answer in chat
        await work_says(client, user, "满意", 9100 + n)
    clock.set(sh(2026, 7, 3, 16, 0))
    [nudge_id] = (await engine.tick()).fired
    await wait_until(lambda: settled(client))
    nudged = [s for s in fake_wechat.sent(APP_SEND) if "还差您的回复" in str(s.json)]
    assert sorted(s.json["touser"] for s in nudged) == ["w000", "w002"]
    assert "3/5 人已回复" in nudged[0].json["text"]["content"]
    [prompt] = [r for r in await runs_of(client, "canteen") if r.id == prompt_id]
    [nudge] = await runs_of(client, "canteen-nudge")
    async with client.app[SERVICES].sessions() as session:
        stats = await surveys.survey_stats(session, prompt)
        assert (stats.audience, stats.answered, stats.rate) == (5, 3, 0.6)
        assert nudge.id == nudge_id and (await runs.run_stats(session, nudge)).count("sent") == 2


async def test_group_survey_reminder_tells_the_group_how_many_answered(
    db_url: str, fake_wechat: FakeWeChat, content: Path, clock: Clock, start_app: AppMaker
) -> None:
    client = await start_app(broadcast_config(db_url, fake_wechat.base_url, content), clock)
    engine = engine_of(client)
    clock.set(sh(2026, 7, 3, 7, 0))
    await engine.tick()
    clock.set(sh(2026, 7, 3, 8, 0))
    await engine.tick()  # the shipped 08:00 prompt
    for n, user in enumerate(["a", "b"]):
        await work_says(client, user, "购药登记", 9200 + n)
    clock.set(sh(2026, 7, 3, 14, 0))
    await engine.tick()  # the shipped 14:00 reminder
    await wait_until(lambda: settled(client))
    texts = [s.json["text"]["content"] for s in fake_wechat.sent(WEBHOOK_SEND)]
    assert len(texts) == 2 and "已收到 2 位邻居的回复" in texts[1]

"""The daily digest at forms.digest_time (Beijing time): once a day, whichever instance."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from bot import keys
from bot.render import CHINA
from handlers.app import init_app
from handlers.forms.digest import send_digest
from tests.conftest import make_config
from tests.fakes.wechat_server import FakeWeChat
from tests.forms.chat import (
    ENROLMENT,
    MEDICINE,
    WEBHOOK,
    Client,
    Clock,
    fill,
    number_in,
    say,
    wait_sent,
)


def next_evening() -> datetime:
    """The next 19:58 Beijing time at least a few minutes away, in UTC."""
    now = datetime.now(UTC).astimezone(CHINA) + timedelta(minutes=3)
    at = datetime.combine(now.date(), time(19, 58), tzinfo=CHINA)
    return (at if at >= now else at + timedelta(days=1)).astimezone(UTC)


def digest_to(key: str) -> Any:
    return lambda r: r.query.get("key") == key and "登记汇总" in r.json["markdown"]["content"]


async def test_digest_goes_out_once_at_the_configured_time(
    aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChat
) -> None:
    evening = next_evening()
    clock = Clock(evening - timedelta(days=1))
    config = make_config(db_url, api_base=fake_wechat.base_url)
    client: Client = await aiohttp_client(init_app(config, clock=clock))
    services = client.app[keys.SERVICES]
    await say(client, "我要买药", user="yesterday")
    await fill(client, MEDICINE, user="yesterday")
    old = number_in(await say(client, "确认", user="yesterday"))

    clock.now = evening
    await say(client, "我要买药", user="today")
    await fill(client, MEDICINE, user="today")
    new = number_in(await say(client, "确认", user="today"))
    await say(client, "申请入会", user="joiner")
    await fill(client, ENROLMENT, user="joiner")
    member = number_in(await say(client, "确认", user="joiner"))

    assert await send_digest(services) is False  # 19:58: not yet
    clock.advance(minutes=3)
    assert await send_digest(services) is True
    assert await send_digest(services) is False  # once a day …
    other: Client = await aiohttp_client(init_app(config, clock=clock))
    assert await send_digest(other.app[keys.SERVICES]) is False  # … whichever instance

    volunteers = await wait_sent(fake_wechat, WEBHOOK, digest_to("robot-volunteers"))
    cadres = await wait_sent(fake_wechat, WEBHOOK, digest_to("robot-cadres"))
    assert len(volunteers) == 1 and len(cadres) == 1
    text = volunteers[0].json["markdown"]["content"]
    day = evening.astimezone(CHINA).date().isoformat()
    assert f"{day} 登记汇总" in text and "购药登记**：1 条" in text
    assert new in text and old not in text and "往日还没办完的：1 条" in text
    assert "3号楼2单元501" in text and "很急" in text
    assert member in cadres[0].json["markdown"]["content"]
    # The cadres' group covers two forms: one export command each, as `forms export` takes it.
    for form_id in ("enrolment", "legal_aid"):
        assert (
            f"forms export --form {form_id} --date {day}`" in cadres[0].json["markdown"]["content"]
        )
    assert member not in text

    # The next evening, again once.
    clock.advance(days=1)
    assert await send_digest(services) is True
    assert len(await wait_sent(fake_wechat, WEBHOOK, digest_to("robot-volunteers"), 2)) == 2

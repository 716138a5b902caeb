"""服务申请, 入会申请 and 法律援助申请, each scripted through the dev chat."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot import keys
from bot.dispatch import Context, ConversationState
from bot.messages import Incoming, Kind
from handlers.app import init_app
from handlers.cases.models import Case
from handlers.forms.models import FormSubmission
from tests.conftest import make_config
from tests.fakes.wechat_server import FakeWeChat
from tests.forms.chat import (
    ENROLMENT,
    LEGAL_AID,
    SERVICE_REPAIR,
    WEBHOOK,
    Client,
    fill,
    number_in,
    robot,
    say,
    wait_sent,
)


async def answers_of(client: Client, number: str) -> dict[str, Any]:
    async with client.app[keys.SERVICES].sessions() as session:
        sub = (
            await session.execute(select(FormSubmission).where(FormSubmission.number == number))
        ).scalar_one()
    return dict(sub.answers)


async def test_service_request_for_a_repair_asks_where(client: Client) -> None:
    first = await say(client, "服务申请", user="s1")
    assert "维修" in first and "心理咨询" in first and "送清凉领取" in first
    assert "请回复序号" in await say(client, "修空调", user="s1")  # not one of the options
    await say(client, SERVICE_REPAIR[0], user="s1")
    # 维修 brings the address question; the description may contain question words.
    assert "在哪里修" in await say(client, "水龙头漏水怎么办", user="s1")
    summary = await fill(client, SERVICE_REPAIR[2:], user="s1")
    assert "服务类别：维修" in summary and "维修地址：幸福小区5号楼302" in summary
    assert "情况说明：水龙头漏水怎么办" in summary
    number = number_in(await say(client, "确认", user="s1"))
    assert number.startswith("服-")
    answers = await answers_of(client, number)
    assert answers["category"] == "维修" and answers["preferred_time"] == "周六上午"


async def test_service_request_without_repair_skips_the_address(client: Client) -> None:
    await say(client, "我要报修", user="s2")
    await say(client, "心理咨询", user="s2")  # the option's text works as well as its number
    assert "手机号" in await say(client, "最近压力很大睡不着", user="s2")
    summary = await fill(client, ["13912345678", "工作日晚上"], user="s2")
    assert "维修地址" not in summary and "服务类别：心理咨询" in summary
    # Changing the category to 维修 at the summary asks the new question, then returns.
    await say(client, "修改 服务类别", user="s2")
    assert "在哪里修" in await say(client, "1", user="s2")
    summary = await say(client, "幸福小区5号楼302", user="s2")
    assert "维修地址：幸福小区5号楼302" in summary and "请核对" in summary


async def test_enrolment_with_consent_goes_to_the_cadres(
    aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChat
) -> None:
    client: Client = await aiohttp_client(
        init_app(make_config(db_url, api_base=fake_wechat.base_url))
    )
    first = await say(client, "申请入会", user="e1")
    assert "申请加入工会" in first and "姓名" in first
    await fill(client, ENROLMENT[:3], user="e1")
    occupation = await say(client, "4", user="e1")  # 外卖配送员 by number …
    assert "哪个区" in occupation
    await say(client, "上一步", user="e1")
    await say(client, "其他", user="e1")  # … changed to 其他, which asks what exactly
    assert "所在区县" not in await say(client, "保安", user="e1")
    consent = await say(client, "朝阳区", user="e1")
    assert "只用于入会审核" in consent
    assert "请回复「同意」或「不同意」" in await say(client, "看情况", user="e1")
    summary = await say(client, "同意", user="e1")
    assert "职业：其他" in summary and "具体职业：保安" in summary
    assert "同意使用信息：同意" in summary
    number = number_in(await say(client, "确认", user="e1"))
    assert number.startswith("会-")
    cards = await wait_sent(fake_wechat, WEBHOOK, robot("robot-cadres"))
    assert len(cards) == 1 and number in cards[0].json["markdown"]["content"]
    assert "137****1111" in cards[0].json["markdown"]["content"]
    assert not [r for r in fake_wechat.sent(WEBHOOK) if robot("robot-volunteers")(r)]


async def test_enrolment_without_consent_is_not_submitted(client: Client) -> None:
    await say(client, "我要入会", user="e2")
    reply = await fill(client, [*ENROLMENT[:5], "不同意"], user="e2")
    assert "不能提交入会申请" in reply and "已取消" in reply
    assert "还没有提交过" in await say(client, "我的申请", user="e2")


async def test_legal_aid_dates_amounts_and_consent(client: Client) -> None:
    first = await say(client, "申请法律援助", user="l1")
    assert "12351" in first
    await fill(client, LEGAL_AID[:3], user="l1")
    # The amount is optional: a number, or 「跳过」.
    assert "请只回复数字，例如：12000" in await say(client, "一万二", user="l1")
    assert "从什么时候开始" in await say(client, "跳过", user="l1")
    assert "没看懂这个日期" in await say(client, "很久以前", user="l1")
    assert "还没到" in await say(client, "2099-01-01", user="l1")
    assert "手机号" in await say(client, "2026年3月", user="l1")
    summary = await fill(client, LEGAL_AID[5:], user="l1")
    assert "纠纷类型：拖欠工资" in summary and "涉及金额：（未填）" in summary
    assert "开始时间：2026-03" in summary
    await say(client, "修改 涉及金额", user="l1")
    assert "涉及金额：12000元" in await say(client, "12000", user="l1")
    number = number_in(await say(client, "确认", user="l1"))
    assert number.startswith("法-")
    answers = await answers_of(client, number)
    assert answers["amount"] == 12000 and answers["since"] == "2026-03"
    assert answers["consent"] is True


async def test_keyword_in_the_middle_of_a_form_starts_that_form(client: Client) -> None:
    await say(client, "我要买药", user="k1")
    reply = await say(client, "申请入会", user="k1")
    assert "重新开始" in reply and "申请加入工会" in reply


async def test_a_confirmation_handled_twice_opens_one_legal_case(client: Client) -> None:
    # The pipeline runs a handler again on the state it loads when another instance moved the
    # conversation on: the second run of 确认 must find the case the first one opened.
    await say(client, "申请法律援助", user="la2")
    await fill(client, LEGAL_AID, user="la2")
    pipeline = client.app[keys.PIPELINE]
    message = Incoming("dev", "dev", "la2", Kind.TEXT, "again", text="确认", raw_type="text")
    at_summary = await pipeline.store.load_state(message.conversation_key)
    for _ in range(2):
        state = ConversationState(key=at_summary.key, name=at_summary.name, data=at_summary.data)
        ctx = Context(message=message, state=state, services=client.app[keys.SERVICES])
        await pipeline.dispatcher.feed(ctx)
    async with client.app[keys.SERVICES].sessions() as session:
        cases = (await session.execute(select(Case))).scalars().all()
    assert len(cases) == 1

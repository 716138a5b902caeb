"""The whole loop: worker → case → card in the cadre group → cadre reply from WeCom →
the worker receives it; quiet while with a cadre; the 45015 fallback; refusals; ratings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.keys import SERVICES
from bot.storage.models import AuditLog
from handlers.app import init_app
from handlers.cases import service
from handlers.cases.models import Case
from tests.conftest import make_config
from tests.fakes.wechat_server import FakeWeChat
from tests.support import wechat

Client = TestClient[Any, Any]
CS = "/cgi-bin/message/custom/send"
APP = "/cgi-bin/message/send"
ROBOT = "/cgi-bin/webhook/send"
_ids = iter(range(500_000, 10_000_000))


async def worker_says(client: Client, text: str, user: str = "o_rider") -> str:
    signed = wechat.mp_aes("/wechat/mp", wechat.text_xml(user, text, next(_ids)))
    resp = await client.post(signed.path, data=signed.body)
    assert resp.status == 200
    body = await resp.text()
    return "" if body == "success" else str(wechat.decrypt_reply(body)["Content"])


async def cadre_says(client: Client, text: str, cadre: str = "legal01") -> str:
    xml = wechat.text_xml(cadre, text, next(_ids), to=wechat.WORK_CORP_ID, agent=1000002)
    signed = wechat.work_encrypted("/wechat/work", xml)
    resp = await client.post(signed.path, data=signed.body)
    assert resp.status == 200
    reply = wechat.decrypt_reply(
        await resp.text(), wechat.WORK_AES_KEY, wechat.WORK_CORP_ID, wechat.WORK_TOKEN
    )
    return str(reply["Content"])


async def wait_for(fake: FakeWeChat, path: str, count: int = 1) -> list[Any]:
    for _ in range(200):
        sent = fake.sent(path)
        if len(sent) >= count:
            return sent
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path}: {len(fake.sent(path))} sent, expected {count}")


async def start(
    aiohttp_client: Any, db_url: str, fake: FakeWeChat, clock: Callable[[], datetime] | None = None
) -> Client:
    config = make_config(db_url, api_base=fake.base_url)
    app = init_app(config, clock=clock) if clock else init_app(config)
    return await aiohttp_client(app)


async def test_worker_to_cadre_and_back(
    aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChat
) -> None:
    client = await start(aiohttp_client, db_url, fake_wechat)
    await worker_says(client, "老板拖了三个月工资，我电话13912345678")
    opened = await worker_says(client, "转人工")
    assert "工单号 #1" in opened and "法律援助" in opened

    card = (await wait_for(fake_wechat, ROBOT))[0].json["markdown"]["content"]
    assert "新工单 #1" in card and "139****5678" in card and "13912345678" not in card
    duty = (await wait_for(fake_wechat, APP))[0].json
    assert duty["touser"] == "legal01"  # legal cases go to the legal-aid cadre on duty

    # While the case is with a cadre the bot is quiet, and the cadre is told.
    assert await worker_says(client, "单位叫顺达物流") == ""
    told = await wait_for(fake_wechat, APP, 2)
    assert "顺达物流" in told[1].json["text"]["content"]

    answer = await cadre_says(client, "#1 回复 您好，请带上工资条来工会，我们陪您去仲裁。")
    assert "已发送" in answer
    pushed = (await wait_for(fake_wechat, CS))[0].json
    assert pushed["touser"] == "o_rider"
    assert "请带上工资条" in pushed["text"]["content"]

    done = await cadre_says(client, "#1 结案 已帮助申请仲裁")
    assert "已结案" in done
    closing = (await wait_for(fake_wechat, CS, 2))[1].json["text"]["content"]
    assert "已办结" in closing and "满意" in closing
    thanks = await worker_says(client, "1")
    assert "谢谢" in thanks
    async with client.app[SERVICES].sessions() as session:
        case = (await session.execute(select(Case))).scalar_one()
    assert (case.status, case.satisfaction, case.assignee) == ("closed", 1, "legal01")
    # and the bot answers questions again
    assert "请回复数字选择服务" in await worker_says(client, "菜单")


async def test_outside_the_window_the_answer_waits_for_the_next_message(
    aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChat
) -> None:
    client = await start(aiohttp_client, db_url, fake_wechat)
    await worker_says(client, "人工", user="o_late")
    fake_wechat.fail_next(CS, 45015)  # WeChat: outside the 48-hour window
    await cadre_says(client, "#1 回复 材料已收到")
    for _ in range(100):
        events = [e.kind for e in await service.events_of(client.app[SERVICES], 1)]
        if "reply_waiting" in events:
            break
        await asyncio.sleep(0.02)
    assert "reply_waiting" in events
    assert fake_wechat.sent(CS) == []
    # The next time the worker writes, the answer comes with the reply.
    text = await worker_says(client, "在吗", user="o_late")
    assert "您有一条工会回复" in text and "材料已收到" in text
    events = [e.kind for e in await service.events_of(client.app[SERVICES], 1)]
    assert "reply_delivered" in events


async def test_worker_silent_for_two_days_is_not_pushed(
    aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChat
) -> None:
    now = [datetime(2026, 11, 23, 2, 0, tzinfo=UTC)]
    client = await start(aiohttp_client, db_url, fake_wechat, clock=lambda: now[0])
    await worker_says(client, "人工", user="o_quiet")
    now[0] += timedelta(hours=49)
    await cadre_says(client, "#1 回复 请明天来一趟")
    for _ in range(100):
        if "reply_waiting" in [e.kind for e in await service.events_of(client.app[SERVICES], 1)]:
            break
        await asyncio.sleep(0.02)
    assert fake_wechat.calls(CS) == 0  # not even tried: WeChat would refuse with 45015
    assert "请明天来一趟" in await worker_says(client, "你好", user="o_quiet")


async def test_non_cadre_is_refused_and_logged(
    aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChat
) -> None:
    client = await start(aiohttp_client, db_url, fake_wechat)
    await worker_says(client, "人工")
    answer = await cadre_says(client, "#1 回复 我来答", cadre="stranger")
    assert "不在工会干部名单" in answer
    await asyncio.sleep(0.1)
    assert fake_wechat.sent(CS) == []
    async with client.app[SERVICES].sessions() as session:
        audit = (await session.execute(select(AuditLog))).scalars().all()
    assert [(a.actor, a.action) for a in audit] == [("stranger", "refused")]


async def test_claim_transfer_todo_and_hand_back(
    aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChat
) -> None:
    client = await start(aiohttp_client, db_url, fake_wechat)
    await worker_says(client, "人工", user="o_a")
    assert "#1" in await cadre_says(client, "待办", cadre="member01")
    assert "由您负责" in await cadre_says(client, "#1 认领", cadre="member01")
    assert "已转给 李律师" in await cadre_says(client, "#1 转 李律师", cadre="member01")
    shown = await cadre_says(client, "#1", cadre="legal01")
    assert "李律师" in shown and "转交给 李律师" in shown
    assert "已交还机器人" in await cadre_says(client, "#1 交还机器人", cadre="legal01")
    await wait_for(fake_wechat, CS)
    # back with the bot: a question gets an answer, not silence
    assert await worker_says(client, "菜单", user="o_a") != ""


async def test_restart_in_the_middle_of_an_open_case(
    aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChat
) -> None:
    first = await start(aiohttp_client, db_url, fake_wechat)
    await worker_says(first, "人工", user="o_r")
    await first.close()

    second = await start(aiohttp_client, db_url, fake_wechat)  # same database
    assert await worker_says(second, "还有加班费的事", user="o_r") == ""  # still quiet
    await cadre_says(second, "#1 回复 加班费也一起算")
    pushed = await wait_for(fake_wechat, CS)
    assert "加班费也一起算" in pushed[0].json["text"]["content"]


async def test_overdue_cases_are_announced_again_and_escalated_once(
    aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChat
) -> None:
    # Friday 2026-09-24 is a Thursday before the 中秋 holiday: opened at 16:00 Beijing time,
    # a legal case (4 working hours) is due Monday 2026-09-28 11:30 Beijing time.
    now = [datetime(2026, 9, 24, 8, 0, tzinfo=UTC)]
    client = await start(aiohttp_client, db_url, fake_wechat, clock=lambda: now[0])
    await worker_says(client, "没签合同能要双倍工资吗", user="o_due")
    await worker_says(client, "人工", user="o_due")
    services = client.app[SERVICES]
    await wait_for(fake_wechat, ROBOT)

    now[0] = datetime(2026, 9, 27, 12, 0, tzinfo=UTC)  # Sunday: holiday, not overdue yet
    assert await service.check_overdue(services) == 0
    now[0] = datetime(2026, 9, 28, 3, 31, tzinfo=UTC)  # Monday 11:31 Beijing time
    assert await service.check_overdue(services) == 1
    assert await service.check_overdue(services) == 0  # escalated once, not every check
    cards = await wait_for(fake_wechat, ROBOT, 2)
    assert "超过首次响应时限" in cards[1].json["markdown"]["content"]
    supervisors = [s.json for s in await wait_for(fake_wechat, APP, 2)]
    assert any(
        s["touser"] == "supervisor01" and "督办" in s["text"]["content"] for s in supervisors
    )
    stats = await service.stats(services)
    assert (stats.open, stats.overdue) == (1, 1)


async def test_cards_are_markdown_with_the_command_hint(
    aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChat
) -> None:
    client = await start(aiohttp_client, db_url, fake_wechat)
    await worker_says(client, "我要找人工", user="o_md")
    body = (await wait_for(fake_wechat, ROBOT))[0].json
    assert body["msgtype"] == "markdown"
    assert "#1 认领" in body["markdown"]["content"]


async def test_legal_aid_application_opens_a_case(
    aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChat
) -> None:
    client = await start(aiohttp_client, db_url, fake_wechat)
    reply = await worker_says(client, "申请法律援助", user="o_la")
    for _ in range(12):  # answer whatever the form asks until it shows the summary
        if "确认" in reply and "提交" in reply:
            break
        if "同意" in reply:
            answer = "同意"
        elif "手机" in reply or "电话" in reply or "联系" in reply:
            answer = "13800001111"
        elif "金额" in reply or "多少" in reply:
            answer = "8000"
        elif "什么时候" in reply or "起" in reply or "日期" in reply:
            answer = "2026-09-01"
        elif "1." in reply or "1 " in reply:
            answer = "1"
        else:
            answer = "顺达物流 张三"
        reply = await worker_says(client, answer, user="o_la")
    reply = await worker_says(client, "确认", user="o_la")
    assert "法-" in reply and "工单号 #1" in reply
    async with client.app[SERVICES].sessions() as session:
        case = (await session.execute(select(Case))).scalar_one()
    assert case.category == "legal" and "法律援助申请" in case.summary
    # The answers as the worker saw them in the summary, not stored values.
    assert "8000元" in case.summary and "True" not in case.summary
    duty = await wait_for(fake_wechat, APP)
    assert duty[0].json["touser"] == "legal01"
    assert "13800001111" not in duty[0].json["text"]["content"]
    # the worker is now with a cadre: the bot stays quiet
    assert await worker_says(client, "什么时候有人联系我", user="o_la") == ""


async def test_cadres_read_statuses_and_events_in_chinese(
    aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChat
) -> None:
    client = await start(aiohttp_client, db_url, fake_wechat)
    await worker_says(client, "我电话13912345678，老板不发工资", user="o_cn")
    await worker_says(client, "人工", user="o_cn")
    shown = await cadre_says(client, "#1")
    assert "状态：待处理" in shown and "开单 职工（尾号" in shown
    await cadre_says(client, "#1 认领")
    await cadre_says(client, "#1 回复 您好，请带上工资条来工会。")
    shown = await cadre_says(client, "#1")
    assert "状态：已认领" in shown
    for line in ("查看 李律师", "认领 李律师", "回复 李律师：您好"):
        assert line in shown
    assert "#1｜法律援助｜已认领" in await cadre_says(client, "待办")
    await cadre_says(client, "#1 结案 已联系单位")
    assert "已结束（已结案）" in await cadre_says(client, "#1 回复 还在吗")
    shown = await cadre_says(client, "#1")
    assert "状态：已结案" in shown and "结案 李律师：已联系单位" in shown
    for code in ("open", "claimed", "closed", "opened", "read", "cadre_reply", "worker:"):
        assert code not in shown


async def test_a_case_number_is_read_whole_or_not_at_all(
    aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChat
) -> None:
    client = await start(aiohttp_client, db_url, fake_wechat)
    await worker_says(client, "我电话13912345678，老板不发工资", user="o_num")
    await worker_says(client, "人工", user="o_num")
    for text in ("#1.5 回复 好", "#1e3", "#1,2 认领", "#1 你好", "#-1 回复 x", "#"):
        answer = await cadre_says(client, text)
        assert "工单命令" in answer and "#12 回复 内容" in answer, text
        assert "5678" not in answer and "由您负责" not in answer, text
    for digits in ("1234567890", "12345678901234567890"):  # past a 64-bit integer too
        answer = await cadre_says(client, f"#{digits} 回复 x")
        assert answer.startswith(f"没有工单 #{digits}。"), answer
    # numbers that end at a space, the end or a command word still work
    assert "状态：待处理" in await cadre_says(client, "#①")
    assert "已发送" in await cadre_says(client, "#1回复 好的")
    assert "没有工单 #2。" in await cadre_says(client, "＃２　认领")
    await asyncio.sleep(0.1)
    pushed = await wait_for(fake_wechat, CS)
    assert [p.json["text"]["content"].splitlines()[-1] for p in pushed] == ["好的"]
    events = [e.kind for e in await service.events_of(client.app[SERVICES], 1)]
    assert "claimed" not in events and events.count("cadre_reply") == 1


async def _closed_case(client: Client, number: int, user: str) -> None:
    await worker_says(client, "人工", user=user)
    assert "已结案" in await cadre_says(client, f"#{number} 结案 已处理")


async def _satisfaction(client: Client, number: int) -> int | None:
    async with client.app[SERVICES].sessions() as session:
        case = await service.get_case(session, number)
    assert case is not None
    return case.satisfaction


async def test_a_number_out_of_range_is_asked_again_once_then_left(
    aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChat
) -> None:
    client = await start(aiohttp_client, db_url, fake_wechat)
    await _closed_case(client, 1, "o_r1")
    assert "请回复 1、2 或 3" in await worker_says(client, "4", user="o_r1")
    assert "谢谢" in await worker_says(client, "2", user="o_r1")
    assert await _satisfaction(client, 1) == 2

    await _closed_case(client, 2, "o_r2")
    assert "请回复 1、2 或 3" in await worker_says(client, "０", user="o_r2")
    second = await worker_says(client, "4", user="o_r2")  # asked once: now it is menu item 4
    assert "评价" not in second and "您要申请哪项服务" in second
    assert await _satisfaction(client, 2) is None


async def test_something_else_than_a_rating_leaves_the_rating(
    aiohttp_client: Any, db_url: str, fake_wechat: FakeWeChat
) -> None:
    client = await start(aiohttp_client, db_url, fake_wechat)
    await _closed_case(client, 1, "o_r3")
    answer = await worker_says(client, "食堂几点开门", user="o_r3")
    assert "还没学会" in answer and "评价" not in answer
    assert "谢谢" not in await worker_says(client, "1", user="o_r3")  # menu item 1, not a rating
    assert await _satisfaction(client, 1) is None

    await _closed_case(client, 2, "o_r4")
    assert "请回复数字选择服务" in await worker_says(client, "菜单", user="o_r4")
    assert "谢谢" not in await worker_says(client, "3", user="o_r4")
    assert await _satisfaction(client, 2) is None

"""Volunteers move a submission on with `unionbot forms set-status`; the worker is told."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot import keys
from handlers.app import init_app
from handlers.forms.models import FormStatusChange
from tests.conftest import make_config
from tests.fakes.wechat_server import FakeWeChat
from tests.forms.chat import CUSTOM_SEND, MEDICINE, Client, mp_say, number_in, say, wait_sent
from tests.forms.cli import unionbot, write_config


async def test_every_status_change_is_pushed_to_the_worker(
    aiohttp_client: Any,
    db_url: str,
    fake_wechat: FakeWeChat,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client: Client = await aiohttp_client(
        init_app(make_config(db_url, api_base=fake_wechat.base_url))
    )
    await mp_say(client, "我要买药", user="o_status")
    for answer in MEDICINE:
        await mp_say(client, answer, user="o_status")
    number = number_in(await mp_say(client, "确认", user="o_status"))
    config = str(write_config(tmp_path, db_url))

    code, out, _ = await unionbot(
        capsys, "forms", "set-status", number, "accepted", "--config", config
    )
    assert code == 0 and "已提交 → 志愿者已接单" in out and "已通知职工" in out
    code, out, _ = await unionbot(
        capsys, "forms", "set-status", number, "done", "--note", "已放在门口", "--config", config
    )
    assert code == 0 and "已送达" in out

    pushes = await wait_sent(
        fake_wechat, CUSTOM_SEND, lambda r: r.json["touser"] == "o_status", count=2
    )
    texts = [p.json["text"]["content"] for p in pushes]
    assert f"您的购药登记（编号 {number}）志愿者已接单" in texts[0]
    assert "已送达" in texts[1] and "已放在门口" in texts[1]
    assert "已送达" in await mp_say(client, "我的申请", user="o_status")

    # done is final; an unknown number is refused.
    code, _, err = await unionbot(
        capsys, "forms", "set-status", number, "cancelled", "--config", config
    )
    assert code == 1 and "不能改为" in err
    code, _, err = await unionbot(
        capsys, "forms", "set-status", "药-20000101-0001", "done", "--config", config
    )
    assert code == 1 and "没有编号" in err

    async with client.app[keys.SERVICES].sessions() as session:
        history = (
            (await session.execute(select(FormStatusChange).order_by(FormStatusChange.id)))
            .scalars()
            .all()
        )
    assert [(h.from_status, h.to_status) for h in history] == [
        (None, "submitted"),
        ("submitted", "accepted"),
        ("accepted", "done"),
    ]
    assert history[1].actor == "cli:volunteer" and history[2].note == "已放在门口"


async def test_a_dev_chat_worker_sees_the_status_in_my_requests(
    client: Client, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await say(client, "服务申请", user="d1")
    await say(client, "困难帮扶", user="d1")
    for answer in ("家里老人住院，开销大", "13912345678", "随时"):
        await say(client, answer, user="d1")
    number = number_in(await say(client, "确认", user="d1"))
    config = str(write_config(tmp_path, db_url))
    code, out, _ = await unionbot(
        capsys, "forms", "set-status", number, "cancelled", "--by", "小王", "--config", config
    )
    assert code == 0 and "职工回复「我的申请」可看到" in out
    assert "已取消" in await say(client, "我的申请", user="d1")

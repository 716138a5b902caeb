"""Getting a cadre's answer to the worker.

WeChat lets us push a customer-service message only within 48 hours of the worker's last
message (and a few per message); outside that, a template message when one is configured;
otherwise the answer waits in the worker's inbox and is delivered the next time they write.
Every attempt is recorded on the case.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.outbound import WeChatAPIError
from bot.outbound.outbox import Channel, Sender
from bot.services import Services
from bot.storage.models import User, utcnow
from handlers.cases import service
from handlers.cases.models import WorkerInbox

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=48)
PUSH = {"mp": Channel.MP_CS, "work": Channel.WORK_APP}


def install(services: Services, senders: dict[str, Sender]) -> None:
    senders[Channel.CASE_REPLY] = case_reply_sender(services, senders)


def case_reply_sender(services: Services, senders: dict[str, Sender]) -> Sender:
    async def send(recipient: str, payload: dict[str, Any]) -> None:
        case_id = int(payload["case_id"])
        channel, text = str(payload["channel"]), str(payload["text"])
        reason = "this channel has no push"
        push = PUSH.get(channel)
        if push in senders and push is not None:
            if channel == "mp" and not await _within_window(services, payload, recipient):
                reason = "outside the 48-hour window"
            else:
                try:
                    await senders[push](recipient, {"type": "text", "text": text})
                    await _record(services, case_id, "reply_pushed", via=push)
                    return
                except WeChatAPIError as exc:
                    if exc.temporary:
                        raise  # the outbox tries again later
                    reason = f"{exc.errcode} {exc.errmsg}"
        template = services.config.cases.reply_template_id
        if channel == "mp" and template and "mp_template" in senders:
            try:
                await senders["mp_template"](
                    recipient,
                    {
                        "template_id": template,
                        "data": {
                            "first": "您有一条工会回复",
                            "keyword1": f"#{case_id}",
                            "keyword2": text[:180],
                            "remark": "回复公众号可继续沟通",
                        },
                    },
                )
                await _record(services, case_id, "reply_template", reason=reason)
                return
            except WeChatAPIError as exc:
                if exc.temporary:
                    raise
                reason = f"{reason}; template: {exc.errcode}"
        await _park(services, case_id, str(payload["conversation_key"]), text, reason)

    return send


async def _within_window(services: Services, payload: dict[str, Any], openid: str) -> bool:
    async with services.sessions() as session:
        seen = (
            (
                await session.execute(
                    select(User.last_seen_at).where(
                        User.channel == "mp", User.external_id == openid
                    )
                )
            )
            .scalars()
            .first()
        )
    return seen is not None and services.clock() - seen < WINDOW


async def _record(services: Services, case_id: int, kind: str, **detail: Any) -> None:
    async with services.sessions.begin() as session:
        await service.event(session, case_id, kind, "bot", **detail)


async def _park(
    services: Services, case_id: int, conversation_key: str, text: str, reason: str
) -> None:
    async with services.sessions.begin() as session:
        session.add(
            WorkerInbox(
                conversation_key=conversation_key, case_id=case_id, text=text, created_at=utcnow()
            )
        )
        await service.flag_inbox(session, conversation_key)
        await service.event(session, case_id, "reply_waiting", "bot", reason=reason)
    log.info("reply waits for the worker", extra={"case": case_id, "reason": reason})

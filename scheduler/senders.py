"""The outbox senders of broadcasts: WeCom app messages and app group chats, and Official
Account customer-service messages to the workers of an audience.

Two things differ from the message pipeline's senders: WeCom app messages ask WeCom's
duplicate check to drop a copy of one already delivered (a send a crash left in doubt is sent
again), and a member WeCom does not know is a failure to record, not a success.
"""

from __future__ import annotations

from typing import Any

from aiohttp import ClientSession

from bot.outbound import MPClient, WeChatAPIError, WorkClient
from bot.outbound.outbox import Sender
from bot.outbound.token_store import SqlTokenStore
from bot.services import Services
from scheduler.audiences import APPCHAT, MP, WORK


def _msgtype(payload: dict[str, Any]) -> str:
    return "markdown" if payload.get("type") == "markdown" else "text"


def install_senders(http: ClientSession, services: Services, senders: dict[str, Sender]) -> None:
    config = services.config
    store = SqlTokenStore(services.sessions)
    timeout = config.outbox.http_timeout_seconds
    work, mp = config.wechat.work, config.wechat.mp
    if work.corp_id and work.secret:
        client = WorkClient(
            http, work.api_base, work.corp_id, work.secret, work.agent_id, store, timeout=timeout
        )
        interval = config.broadcasts.duplicate_check_minutes * 60

        async def work_member(recipient: str, payload: dict[str, Any]) -> None:
            answer = await client.send_app(
                [recipient], _msgtype(payload), payload["text"], duplicate_check=interval
            )
            if recipient in str(answer.get("invaliduser") or "").split("|"):
                # The member left or is outside the app's visible range: trying again won't help.
                raise WeChatAPIError(81013, f"invalid user {recipient}")

        async def app_chat(recipient: str, payload: dict[str, Any]) -> None:
            await client.appchat_send(recipient, _msgtype(payload), payload["text"])

        senders[WORK] = work_member
        senders[APPCHAT] = app_chat
    if mp.app_id and mp.app_secret:
        mp_client = MPClient(http, mp.api_base, mp.app_id, mp.app_secret, store, timeout=timeout)

        async def mp_member(recipient: str, payload: dict[str, Any]) -> None:
            await mp_client.send_text(recipient, payload["text"])

        senders[MP] = mp_member

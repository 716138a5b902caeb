"""The outbox's senders: one per outbound channel, built from the config."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientSession, ClientTimeout
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Config
from bot.outbound import GroupRobot, MPClient, WeChatAPIError, WorkClient, call_json
from bot.outbound.outbox import Channel, Sender
from bot.outbound.token_store import SqlTokenStore


def build_senders(
    config: Config, http: ClientSession, sessions: async_sessionmaker[AsyncSession]
) -> dict[str, Sender]:
    store = SqlTokenStore(sessions)
    timeout = config.outbox.http_timeout_seconds
    senders: dict[str, Sender] = {}
    mp, work, robot_cfg = config.wechat.mp, config.wechat.work, config.wechat.robot
    if mp.app_id and mp.app_secret:
        mp_client = MPClient(http, mp.api_base, mp.app_id, mp.app_secret, store, timeout=timeout)

        async def mp_cs(recipient: str, payload: dict[str, Any]) -> None:
            await mp_client.send_text(recipient, payload["text"])

        senders[Channel.MP_CS] = mp_cs

        async def mp_template(recipient: str, payload: dict[str, Any]) -> None:
            await mp_client.send_template(
                recipient, payload["template_id"], payload["data"], payload.get("url")
            )

        senders["mp_template"] = mp_template
    if work.corp_id and work.secret:
        work_client = WorkClient(
            http, work.api_base, work.corp_id, work.secret, work.agent_id, store, timeout=timeout
        )

        async def work_app(recipient: str, payload: dict[str, Any]) -> None:
            if payload.get("type") == "markdown":
                await work_client.send_markdown([recipient], payload["text"])
            else:
                await work_client.send_text([recipient], payload["text"])

        senders[Channel.WORK_APP] = work_app
    robot = GroupRobot(http, robot_cfg.api_base, timeout=timeout)

    async def robot_send(recipient: str, payload: dict[str, Any]) -> None:
        # recipient is a robot name from [wechat.robot.keys]; the key itself stays in config.
        key = robot_cfg.keys.get(recipient)
        if not key:
            raise WeChatAPIError(93000, f"no robot key configured for {recipient!r}")
        if payload.get("type") == "markdown":
            await robot.send_markdown(key, payload["text"])
        else:
            await robot.send_text(key, payload["text"])

    senders[Channel.ROBOT] = robot_send

    async def aibot_url(recipient: str, payload: dict[str, Any]) -> None:
        # The intelligent robot's response_url takes a markdown message, once.
        await call_json(
            http,
            "POST",
            recipient,
            params={},
            body={"msgtype": "markdown", "markdown": {"content": payload["text"]}},
            http_timeout=ClientTimeout(total=timeout),
        )

    senders[Channel.AIBOT_URL] = aibot_url
    return senders

"""Pushes about forms, all through the outbox: to the worker (status changes, reminders) and
to the volunteers' or cadres' group robot (cards, digests)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.outbound.outbox import Channel
from bot.services import Services
from bot.storage import repo
from handlers.cases.delivery import PUSH
from handlers.forms.definitions import FormDef

log = logging.getLogger(__name__)


async def to_worker(
    session: AsyncSession, *, channel: str, user_id: str, dedup_key: str, text: str, now: datetime
) -> bool:
    """Queue a text for the worker; False when their channel cannot be pushed to (the dev
    chat and the group robot's @-mentions)."""
    outbox_channel = PUSH.get(channel)
    if outbox_channel is None:
        return False
    await repo.enqueue(
        session,
        dedup_key=dedup_key,
        channel=outbox_channel,
        recipient=user_id,
        payload={"type": "text", "text": text},
        now=now,
    )
    return True


def robots_for(services: Services, form: FormDef) -> list[str]:
    return list(form.notify) or [services.config.forms.notify_robot]


async def to_robots(
    services: Services, session: AsyncSession, robots: list[str], dedup_key: str, text: str
) -> int:
    """Queue a markdown card for each configured robot; returns how many were queued."""
    keys = services.config.wechat.robot.keys
    queued = 0
    for robot in robots:
        if robot not in keys:
            # Nowhere to push (a newcomer's dev set-up): the card goes to the log instead,
            # where the formatter masks phone numbers.
            log.info("form card (no robot configured)", extra={"robot": robot, "card": text})
            continue
        await repo.enqueue(
            session,
            dedup_key=f"{dedup_key}:{robot}",
            channel=Channel.ROBOT,
            recipient=robot,
            payload={"type": "markdown", "text": text},
            now=services.clock(),
        )
        queued += 1
    return queued

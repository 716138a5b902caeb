"""Pushes about forms, all through the outbox: to the worker (status changes, reminders) and
to the volunteers' or cadres' group robot (cards, digests)."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from bot.forms.definitions import FormDef
from bot.services import Services
from bot.storage import repo

log = logging.getLogger(__name__)

# Which outbox channel reaches a worker who wrote on each inbound channel. The dev chat and
# the group robot's @-mentions have no way to push later.
WORKER_CHANNEL = {"mp": "mp_cs", "work": "work_app"}


def split_key(conversation_key: str) -> tuple[str, str, str | None, str]:
    """channel, account, chat (None in private), user of a conversation key."""
    channel, account, chat, user = conversation_key.split(":", 3)
    return channel, account, None if chat == "-" else chat, user


async def to_worker(
    session: AsyncSession, *, channel: str, user_id: str, dedup_key: str, text: str
) -> bool:
    """Queue a text for the worker; False when their channel cannot be pushed to."""
    outbox_channel = WORKER_CHANNEL.get(channel)
    if outbox_channel is None:
        return False
    await repo.enqueue(
        session,
        dedup_key=dedup_key,
        channel=outbox_channel,
        recipient=user_id,
        payload={"type": "text", "text": text},
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
            channel="robot",
            recipient=robot,
            payload={"type": "markdown", "text": text},
        )
        queued += 1
    return queued


def wake_outbox(services: Services) -> None:
    outbox = services.features.get("outbox")
    if outbox is not None:
        outbox.wake()

"""Queries the message path needs, each a small function over an ``AsyncSession``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import Incoming
from bot.storage.models import Message, Outbox, utcnow


def upsert_insert(session: AsyncSession, table: Any) -> Any:
    """An INSERT that takes ON CONFLICT (and RETURNING): the dialect's own construct."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


@dataclass(frozen=True)
class Claim:
    """A message already in the log, as another caller left it."""

    status: str  # processing | done | deferred
    replies: list[dict[str, str]]


async def read_claim(session: AsyncSession, incoming: Incoming) -> Claim:
    row = (
        await session.execute(
            select(Message.status, Message.replies).where(
                Message.channel == incoming.channel, Message.dedup_key == incoming.dedup_key
            )
        )
    ).one()
    return Claim(row.status, list(row.replies))


async def enqueue(
    session: AsyncSession,
    *,
    dedup_key: str,
    channel: str,
    recipient: str,
    payload: dict[str, Any],
    now: datetime | None = None,
) -> bool:
    """Queue one send; returns False when the same ``dedup_key`` is already queued. Pass the
    app's clock as ``now`` (the outbox worker compares due times against it)."""
    now = now or utcnow()
    stmt = (
        upsert_insert(session, Outbox)
        .values(
            dedup_key=dedup_key,
            channel=channel,
            recipient=recipient,
            payload=payload,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        .returning(Outbox.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def stale_messages(session: AsyncSession, older_than: datetime) -> list[Message]:
    """Messages claimed by a process that died before it finished them."""
    rows = await session.execute(
        select(Message).where(Message.status == "processing", Message.created_at < older_than)
    )
    return list(rows.scalars())


async def reclaim_message(session: AsyncSession, message: Message, now: datetime) -> bool:
    """Take over a stale message; False when another instance was quicker."""
    result = await session.execute(
        update(Message)
        .where(
            Message.id == message.id,
            Message.status == "processing",
            Message.created_at == message.created_at,
        )
        .values(created_at=now)
    )
    return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

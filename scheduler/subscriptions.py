"""Topic subscriptions (订阅 / 退订): one row per worker and topic, kept when unsubscribed so
a push about the topic leaves that worker out even when it goes to every member."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.repo import upsert_insert
from bot.text import normalise
from scheduler.models import Subscription

EVERYTHING = ("全部", "所有", "全部主题", "所有主题")


async def set_subscribed(
    session: AsyncSession, user_id: int, topics: Sequence[str], subscribed: bool, now: datetime
) -> None:
    if not topics:
        return
    stmt = upsert_insert(session, Subscription).values(
        [
            {"user_id": user_id, "topic": t, "subscribed": subscribed, "updated_at": now}
            for t in topics
        ]
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["user_id", "topic"],
            set_={"subscribed": stmt.excluded.subscribed, "updated_at": stmt.excluded.updated_at},
        )
    )


async def subscribed_topics(session: AsyncSession, user_id: int) -> list[str]:
    rows = await session.execute(
        select(Subscription.topic).where(
            Subscription.user_id == user_id, Subscription.subscribed.is_(True)
        )
    )
    return sorted(rows.scalars())


def match_topics(text: str, topics: Sequence[str]) -> tuple[list[str], list[str]]:
    """The topics named in ``text`` (``直播 夜校``, ``直播、夜校``, ``全部``), and the words that
    name none. A word that contains a topic counts (``直播通知`` → 直播)."""
    words = [w for w in normalise_words(text) if w]
    if any(w in {normalise(e) for e in EVERYTHING} for w in words):
        return list(topics), []
    found: list[str] = []
    unknown: list[str] = []
    folded = {normalise(t): t for t in topics}
    for word in words:
        hits = [t for key, t in folded.items() if key == word] or [
            t for key, t in folded.items() if key in word
        ]
        if hits:
            found.extend(t for t in hits if t not in found)
        else:
            unknown.append(word)
    return found, unknown


def normalise_words(text: str) -> list[str]:
    for sep in ("、", "，", ",", "；", ";", "和", "与", "/"):
        text = text.replace(sep, " ")
    return [normalise(w) for w in text.split()]

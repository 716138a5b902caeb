"""Survey prompts: who of a run's audience has answered.

An answer is, for now, a message to the bot after the run fired (any chat: the prompt goes to
a group, the form is filled in private). Everything that counts answers goes through
``respondents`` and ``writers_since``, so counting form submissions of ``run.form_id`` later is
a change here only.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import Message, User
from scheduler.models import BroadcastRun, Delivery


@dataclass(frozen=True)
class SurveyStats:
    audience: int  # workers the prompt went to (groups have no count)
    answered: int  # of them, those who answered
    writers: int  # everyone who wrote since the prompt (the answers to a group prompt)

    @property
    def rate(self) -> float | None:
        return self.answered / self.audience if self.audience else None


async def message_mark(session: AsyncSession) -> int:
    """The newest message id now: a survey's answers are the messages after it."""
    return int(await session.scalar(select(func.coalesce(func.max(Message.id), 0))) or 0)


async def writers_since(session: AsyncSession, mark: int) -> set[tuple[str, str, str]]:
    """(channel, account, user) of everyone who wrote to the bot after message ``mark``;
    events (follow, menu view) are not answers."""
    rows = await session.execute(
        select(Message.conversation_key)
        .where(Message.id > mark, Message.kind != "event")
        .distinct()
    )
    writers: set[tuple[str, str, str]] = set()
    for key in rows.scalars():
        parts = key.split(":", 3)
        if len(parts) == 4:
            writers.add((parts[0], parts[1], parts[3]))
    return writers


async def audience_users(session: AsyncSession, run_id: int) -> dict[int, tuple[str, str, str]]:
    rows = await session.execute(
        select(User.id, User.channel, User.account, User.external_id)
        .join(Delivery, Delivery.user_id == User.id)
        .where(Delivery.run_id == run_id)
    )
    return {r.id: (r.channel, r.account, r.external_id) for r in rows}


async def respondents(session: AsyncSession, run: BroadcastRun) -> set[int]:
    """User ids of the run's audience who answered."""
    users = await audience_users(session, run.id)
    if not users:
        return set()
    writers = await writers_since(session, run.messages_mark)
    return {uid for uid, who in users.items() if who in writers}


async def survey_stats(session: AsyncSession, run: BroadcastRun) -> SurveyStats:
    users = await audience_users(session, run.id)
    writers = await writers_since(session, run.messages_mark)
    answered = sum(1 for who in users.values() if who in writers)
    return SurveyStats(audience=len(users), answered=answered, writers=len(writers))

"""The message path's database work, written by group commit.

``begin`` claims a message under its platform id (unique: a retry is recognised), touches the
user and loads the conversation state; ``finish`` stores the replies, the new state and any
late replies for the outbox. Concurrent messages share one transaction for each step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.batching import Batcher
from bot.dispatch.context import ConversationState
from bot.messages import Incoming
from bot.storage.models import Conversation, Message, Outbox, User
from bot.storage.repo import _insert

# The 48-hour customer-service window is counted from the worker's last message; writing
# last_seen_at once a minute keeps it exact enough without a write per message.
TOUCH_EVERY = 60.0


@dataclass(frozen=True)
class Begun:
    message_id: int | None  # None: the message was already claimed (a retry)
    status: str
    replies: list[dict[str, str]]
    user_id: int | None = None
    state: ConversationState | None = None


@dataclass(frozen=True)
class Finish:
    message_id: int
    status: str  # done | deferred
    replies: list[dict[str, str]]
    state: ConversationState | None = None  # saved when given (it changed)
    outbox: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _Begin:
    incoming: Incoming
    claimed_id: int | None  # set when resuming a message claimed earlier (crash recovery)


class MessageStore:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime]
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        # One writer for both steps: a transaction finishes some messages and begins others.
        self._writer: Batcher[_Begin | Finish, Begun | bool] = Batcher(self._write)
        self._touched: dict[tuple[str, str, str], tuple[int, float]] = {}

    async def begin(self, incoming: Incoming, claimed_id: int | None = None) -> Begun:
        result = await self._writer.submit(_Begin(incoming, claimed_id))
        assert isinstance(result, Begun)
        return result

    async def finish(self, item: Finish) -> bool:
        """False when the state changed under us (another instance): load and run again."""
        result = await self._writer.submit(item)
        assert isinstance(result, bool)
        return result

    async def _write(self, ops: Sequence[_Begin | Finish]) -> list[Begun | bool]:
        finishes = [op for op in ops if isinstance(op, Finish)]
        begins = [op for op in ops if isinstance(op, _Begin)]
        now = self.clock()
        async with self.sessions.begin() as session:
            finished = iter(await self._write_finish(session, finishes, now))
            begun = iter(await self._write_begin(session, begins, now))
        return [next(finished) if isinstance(op, Finish) else next(begun) for op in ops]

    async def load_state(self, key: str) -> ConversationState:
        async with self.sessions() as session:
            found = await _conversations(session, [key])
        return found.get(key) or ConversationState(key=key)

    async def _write_begin(
        self, session: AsyncSession, items: Sequence[_Begin], now: datetime
    ) -> list[Begun]:
        if not items:
            return []
        claimed = await self._claim(session, [i for i in items if i.claimed_id is None], now)
        for item in items:
            if item.claimed_id is not None:
                claimed[_msg_key(item.incoming)] = item.claimed_id
        ours = [i.incoming for i in items if _msg_key(i.incoming) in claimed]
        users = await self._touch_users(session, ours, now)
        states = await _conversations(session, sorted({m.conversation_key for m in ours}))
        existing = await _existing(
            session, [i.incoming for i in items if _msg_key(i.incoming) not in claimed]
        )
        results: list[Begun] = []
        for item in items:
            m = item.incoming
            message_id = claimed.get(_msg_key(m))
            if message_id is None:
                status, replies = existing.get(_msg_key(m), ("processing", []))
                results.append(Begun(None, status, replies))
                continue
            state = states.get(m.conversation_key) or ConversationState(key=m.conversation_key)
            # Each message gets its own copy: the handler mutates it.
            state = ConversationState(
                key=state.key,
                name=state.name,
                data=dict(state.data),
                version=state.version,
                exists=state.exists,
            )
            results.append(Begun(message_id, "processing", [], users.get(_user_key(m)), state))
        return results

    async def _claim(
        self, session: AsyncSession, items: Sequence[_Begin], now: datetime
    ) -> dict[tuple[str, str], int]:
        if not items:
            return {}
        rows: list[dict[str, Any]] = [
            {
                "channel": i.incoming.channel,
                "dedup_key": i.incoming.dedup_key,
                "conversation_key": i.incoming.conversation_key,
                "kind": i.incoming.kind.value,
                "text": i.incoming.text[:4000],
                "status": "processing",
                "replies": [],
                "created_at": now,
            }
            for i in items
        ]
        stmt = (
            _insert(session, Message)
            .on_conflict_do_nothing(index_elements=["channel", "dedup_key"])
            .returning(Message.id, Message.channel, Message.dedup_key)
        )
        result = await session.execute(stmt, rows)
        return {(r.channel, r.dedup_key): r.id for r in result}

    async def _touch_users(
        self, session: AsyncSession, messages: Sequence[Incoming], now: datetime
    ) -> dict[tuple[str, str, str], int]:
        known: dict[tuple[str, str, str], int] = {}
        stale: dict[tuple[str, str, str], Incoming] = {}
        tick = time.monotonic()
        for m in messages:
            key = _user_key(m)
            cached = self._touched.get(key)
            if cached is not None and tick - cached[1] < TOUCH_EVERY:
                known[key] = cached[0]
            else:
                stale[key] = m
        if stale:
            stmt = _insert(session, User)
            stmt = stmt.on_conflict_do_update(
                index_elements=["channel", "account", "external_id"],
                set_={"last_seen_at": stmt.excluded.last_seen_at},
            ).returning(User.id, User.channel, User.account, User.external_id)
            rows = [
                {
                    "channel": k[0],
                    "account": k[1],
                    "external_id": k[2],
                    "member_status": "unknown",
                    "created_at": now,
                    "last_seen_at": now,
                }
                for k in stale
            ]
            for r in await session.execute(stmt, rows):
                key = (r.channel, r.account, r.external_id)
                known[key] = r.id
                self._touched[key] = (r.id, tick)
            if len(self._touched) > 100_000:  # bounded memory: forget the oldest half
                for old in list(self._touched)[:50_000]:
                    del self._touched[old]
        return known

    async def _write_finish(
        self, session: AsyncSession, items: Sequence[Finish], now: datetime
    ) -> list[bool]:
        if not items:
            return []
        table = cast(Table, Message.__table__)
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(
                status=bindparam("b_status"),
                replies=bindparam("b_replies"),
                finished_at=bindparam("b_finished"),
            ),
            [
                {
                    "b_id": i.message_id,
                    "b_status": i.status,
                    "b_replies": i.replies,
                    "b_finished": now,
                }
                for i in items
            ],
        )
        results: list[bool] = []
        for item in items:
            results.append(item.state is None or await _save_state(session, item.state, now))
            for row in item.outbox:
                stmt = (
                    _insert(session, Outbox)
                    .values(
                        status="pending", attempts=0, next_attempt_at=now, created_at=now, **row
                    )
                    .on_conflict_do_nothing(index_elements=["dedup_key"])
                )
                await session.execute(stmt)
        return results


async def _save_state(session: AsyncSession, state: ConversationState, now: datetime) -> bool:
    if not state.exists:
        stmt = (
            _insert(session, Conversation)
            .values(key=state.key, state=state.name, data=state.data, version=1, updated_at=now)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(Conversation.key)
        )
        if (await session.execute(stmt)).scalar_one_or_none() is None:
            return False
    else:
        result = await session.execute(
            update(Conversation)
            .where(Conversation.key == state.key, Conversation.version == state.version)
            .values(state=state.name, data=state.data, version=state.version + 1, updated_at=now)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return False
    state.version += 1
    state.exists = True
    state.dirty = False
    return True


async def _conversations(
    session: AsyncSession, keys: Sequence[str]
) -> dict[str, ConversationState]:
    if not keys:
        return {}
    rows = await session.execute(
        select(Conversation.key, Conversation.state, Conversation.data, Conversation.version).where(
            Conversation.key.in_(keys)
        )
    )
    return {
        r.key: ConversationState(
            key=r.key, name=r.state, data=dict(r.data), version=r.version, exists=True
        )
        for r in rows
    }


async def _existing(
    session: AsyncSession, messages: Sequence[Incoming]
) -> dict[tuple[str, str], tuple[str, list[dict[str, str]]]]:
    if not messages:
        return {}
    keys = [_msg_key(m) for m in messages]
    rows = await session.execute(
        select(Message.channel, Message.dedup_key, Message.status, Message.replies).where(
            tuple_(Message.channel, Message.dedup_key).in_(keys)
        )
    )
    return {(r.channel, r.dedup_key): (r.status, list(r.replies)) for r in rows}


def _msg_key(m: Incoming) -> tuple[str, str]:
    return (m.channel, m.dedup_key)


def _user_key(m: Incoming) -> tuple[str, str, str]:
    return (m.channel, m.account, m.user_id)

"""The message path's database work, written by group commit.

``begin`` claims a message under its platform id (unique: a retry is recognised), touches the
user and loads the conversation state; ``finish`` stores the replies, the new state and any
late replies for the outbox. Concurrent messages share one transaction.

The batch is plain synchronous SQLAlchemy Core, run as one unit: on PostgreSQL through the
async engine's ``run_sync``; on SQLite in one worker thread with a synchronous connection, so a
whole transaction costs one hand-over to the thread instead of one per statement (each of
which waits its turn on a busy event loop). On SQLite the statements every message needs
(claim, touch the user, load state, save state, store replies) also go straight to the
driver by default: SQLAlchemy's work per statement (cache keys, parameter processing) cost
twice what SQLite itself did. Values are encoded by the columns' own SQLAlchemy types, so both
ways store the same text. The two statement sets share one interface (``_Statements``);
``MessageStore(statements="core")`` runs the Core set on SQLite too, and
tests/test_message_store.py holds both sets to one contract.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import (
    Column,
    Connection,
    Dialect,
    Engine,
    Table,
    bindparam,
    create_engine,
    event,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.batching import Batcher
from bot.messages import Incoming
from bot.state import ConversationState
from bot.storage.db import _sqlite_pragmas
from bot.storage.models import Conversation, Message, Outbox, User

# The 48-hour customer-service window is counted from the worker's last message; writing
# last_seen_at once a minute keeps it exact enough without a write per message.
TOUCH_EVERY = 60.0
# A batch that still finds the database locked after busy_timeout is written again, this often.
LOCKED_ATTEMPTS = 3

log = logging.getLogger(__name__)

# Which statements the store runs: SQLAlchemy Core (any database) or the same statements
# handed to the sqlite3 driver (SQLite only).
StatementSet = Literal["core", "sqlite-direct"]

MESSAGES = cast(Table, Message.__table__)
USERS = cast(Table, User.__table__)
CONVERSATIONS = cast(Table, Conversation.__table__)
OUTBOX = cast(Table, Outbox.__table__)


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
        self,
        engine: AsyncEngine,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
        statements: StatementSet | None = None,
    ) -> None:
        """``statements``: by default "sqlite-direct" on SQLite (it measured faster there)
        and "core" on PostgreSQL; "sqlite-direct" on PostgreSQL is refused."""
        on_sqlite = engine.dialect.name == "sqlite"
        if statements is None:
            statements = "sqlite-direct" if on_sqlite else "core"
        if statements == "sqlite-direct" and not on_sqlite:
            raise ValueError("the sqlite-direct statements run on SQLite only")
        self.engine = engine
        self.clock = clock
        self.monotonic = monotonic
        self._sync: Engine | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._statements: _Statements = _CORE
        self._conn: Connection | None = None  # the thread's connection, on SQLite
        if on_sqlite:
            self._sync = create_engine(
                engine.url.set(drivername="sqlite"),
                pool_size=1,
                max_overflow=0,
                connect_args={"check_same_thread": False},
            )
            event.listen(self._sync, "connect", _sqlite_pragmas)
            event.listen(self._sync, "connect", _driver_leaves_transactions_to_us)
            event.listen(self._sync, "begin", _begin_immediate)
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="message-store")
            if statements == "sqlite-direct":
                self._statements = _SqliteStatements(self._sync.dialect)
        # One writer for both steps: a transaction finishes some messages and begins others.
        self._writer: Batcher[_Begin | Finish, Begun | bool] = Batcher(self._write)
        # Users written lately, oldest first: (id, when). Only the last TOUCH_EVERY seconds
        # are kept, so the memory follows the workers of the last minute, not of all time.
        self._touched: OrderedDict[tuple[str, str, str], tuple[int, float]] = OrderedDict()
        self._touched_now: list[tuple[str, str, str]] = []  # by the transaction under way

    async def close(self) -> None:
        if self._thread is not None:
            if self._conn is not None:
                await asyncio.get_running_loop().run_in_executor(self._thread, self._conn.close)
            self._thread.shutdown(wait=True)
        if self._sync is not None:
            self._sync.dispose()

    async def begin(self, incoming: Incoming, claimed_id: int | None = None) -> Begun:
        result = await self._writer.submit(_Begin(incoming, claimed_id))
        assert isinstance(result, Begun)
        return result

    async def finish(self, item: Finish) -> bool:
        """False when the state changed under us (another instance): load and run again."""
        result = await self._writer.submit(item)
        assert isinstance(result, bool)
        return result

    async def load_state(self, key: str) -> ConversationState:
        async with self.engine.connect() as conn:
            found = await conn.run_sync(_conversations, [key])
        return found.get(key) or ConversationState(key=key)

    async def _write(self, ops: Sequence[_Begin | Finish]) -> list[Begun | bool]:
        now = self.clock()
        if self._sync is not None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._thread, self._write_in_thread, ops, now)
        try:
            async with self.engine.begin() as conn:
                return await conn.run_sync(self._write_sync, ops, now)
        except BaseException:
            self._forget_touched()
            raise

    def _write_in_thread(self, ops: Sequence[_Begin | Finish], now: datetime) -> list[Begun | bool]:
        assert self._sync is not None
        for attempt in range(1, LOCKED_ATTEMPTS + 1):
            try:
                # The thread keeps one connection open rather than taking it from the pool
                # (and having it reset) for every transaction.
                if self._conn is None or self._conn.closed or self._conn.invalidated:
                    self._conn = self._sync.connect()
                with self._conn.begin():
                    return self._write_sync(self._conn, ops, now)
            except (sqlite3.Error, DBAPIError) as caught:
                self._forget_touched()
                # The driver's own errors (the BEGIN IMMEDIATE of the hook, our direct
                # statements) become SQLAlchemy's, like every other statement's: callers
                # handle one kind of database error.
                exc = (
                    DBAPIError.instance(None, None, caught, sqlite3.Error)
                    if isinstance(caught, sqlite3.Error)
                    else caught
                )
                # Still locked after busy_timeout (another process held the file that
                # long): the transaction was rolled back whole, so it can simply run again.
                locked = isinstance(exc, OperationalError) and "locked" in str(exc)
                if attempt < LOCKED_ATTEMPTS and locked:
                    log.warning("database locked, writing again", extra={"attempt": attempt})
                    continue
                if exc is caught:
                    raise
                raise exc from caught
            except BaseException:
                self._forget_touched()
                raise
        raise AssertionError("unreachable")

    def _forget_touched(self) -> None:
        """Users created in a transaction that was rolled back have no id after all."""
        for key in self._touched_now:
            self._touched.pop(key, None)
        self._touched_now.clear()

    def _write_sync(
        self, conn: Connection, ops: Sequence[_Begin | Finish], now: datetime
    ) -> list[Begun | bool]:
        self._touched_now.clear()
        finishing = [op for op in ops if isinstance(op, Finish)]
        finished = iter(_write_finish(conn, self._statements, finishing, now))
        begun = iter(self._write_begin(conn, [op for op in ops if isinstance(op, _Begin)], now))
        return [next(finished) if isinstance(op, Finish) else next(begun) for op in ops]

    def _write_begin(self, conn: Connection, items: Sequence[_Begin], now: datetime) -> list[Begun]:
        if not items:
            return []
        statements = self._statements
        claimed = statements.claim(conn, [i.incoming for i in items if i.claimed_id is None], now)
        for item in items:
            if item.claimed_id is not None:
                claimed[_msg_key(item.incoming)] = item.claimed_id
        ours = [i.incoming for i in items if _msg_key(i.incoming) in claimed]
        users = self._touch_users(conn, ours, now)
        states = statements.conversations(conn, sorted({m.conversation_key for m in ours}))
        existing = _existing(
            conn, [i.incoming for i in items if _msg_key(i.incoming) not in claimed]
        )
        results: list[Begun] = []
        handed_out: set[tuple[str, str]] = set()
        for item in items:
            m = item.incoming
            message_id = claimed.get(_msg_key(m))
            if message_id is None or _msg_key(m) in handed_out:
                # Claimed before, or by an earlier item of this batch (a retry that arrived
                # with the first): only one caller handles the message.
                status, replies = existing.get(_msg_key(m), ("processing", []))
                results.append(Begun(None, status, replies))
                continue
            handed_out.add(_msg_key(m))
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

    def _touch_users(
        self, conn: Connection, messages: Sequence[Incoming], now: datetime
    ) -> dict[tuple[str, str, str], int]:
        known: dict[tuple[str, str, str], int] = {}
        stale: dict[tuple[str, str, str], Incoming] = {}
        tick = self.monotonic()
        while self._touched:
            oldest = next(iter(self._touched.values()))
            if tick - oldest[1] < TOUCH_EVERY:
                break
            self._touched.popitem(last=False)
        for m in messages:
            key = _user_key(m)
            cached = self._touched.get(key)
            if cached is not None:
                known[key] = cached[0]
            else:
                stale[key] = m
        if stale:
            for key, user_id in self._statements.touch_users(conn, list(stale), now).items():
                known[key] = user_id
                self._touched[key] = (user_id, tick)
                self._touched.move_to_end(key)
                self._touched_now.append(key)
        return known


def _insert(conn: Connection, table: Table) -> Any:
    # ON CONFLICT needs the dialect's own insert construct.
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


class _Statements:
    """The statements every message needs, in SQLAlchemy Core: any database."""

    def claim(
        self, conn: Connection, messages: Sequence[Incoming], now: datetime
    ) -> dict[tuple[str, str], int]:
        return _claim(conn, messages, now)

    def conversations(self, conn: Connection, keys: Sequence[str]) -> dict[str, ConversationState]:
        return _conversations(conn, keys)

    def touch_users(
        self, conn: Connection, keys: Sequence[tuple[str, str, str]], now: datetime
    ) -> dict[tuple[str, str, str], int]:
        """Create the users or note when they were last seen; their ids by (channel, account,
        external id)."""
        stmt = _insert(conn, USERS)
        stmt = stmt.on_conflict_do_update(
            index_elements=["channel", "account", "external_id"],
            set_={"last_seen_at": stmt.excluded.last_seen_at},
        ).returning(USERS.c.id, USERS.c.channel, USERS.c.account, USERS.c.external_id)
        rows = [
            {
                "channel": k[0],
                "account": k[1],
                "external_id": k[2],
                "member_status": "unknown",
                "created_at": now,
                "last_seen_at": now,
            }
            for k in keys
        ]
        return {(r.channel, r.account, r.external_id): r.id for r in conn.execute(stmt, rows)}

    def mark_finished(self, conn: Connection, items: Sequence[Finish], now: datetime) -> None:
        conn.execute(
            update(MESSAGES)
            .where(MESSAGES.c.id == bindparam("b_id"))
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

    def update_state(self, conn: Connection, state: ConversationState, now: datetime) -> bool:
        """Save a stored state unless another writer moved it on (its version changed)."""
        result = conn.execute(
            update(CONVERSATIONS)
            .where(CONVERSATIONS.c.key == state.key, CONVERSATIONS.c.version == state.version)
            .values(state=state.name, data=state.data, version=state.version + 1, updated_at=now)
        )
        return result.rowcount == 1


_CORE = _Statements()
# Rows per statement: SQLite allows 32766 parameters in one.
_ROWS_PER_STATEMENT = 500


class _SqliteStatements(_Statements):
    """The same statements handed to the sqlite3 driver directly."""

    def __init__(self, dialect: Dialect) -> None:
        def bind(column: Column[Any]) -> Callable[[Any], Any]:
            return column.type._cached_bind_processor(dialect) or _same

        def result(column: Column[Any]) -> Callable[[Any], Any]:
            return column.type._cached_result_processor(dialect, None) or _same

        self._time = bind(MESSAGES.c.created_at)
        self._json = bind(MESSAGES.c.replies)
        self._read_json = result(CONVERSATIONS.c.data)

    def claim(
        self, conn: Connection, messages: Sequence[Incoming], now: datetime
    ) -> dict[tuple[str, str], int]:
        created, no_replies = self._time(now), self._json([])
        rows = _in_chunks(
            _cursor(conn),
            "INSERT INTO messages (channel, dedup_key, conversation_key, kind, text, status,"
            " replies, created_at) VALUES ",
            "(?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    m.channel,
                    m.dedup_key,
                    m.conversation_key,
                    m.kind.value,
                    m.text[:4000],
                    "processing",
                    no_replies,
                    created,
                )
                for m in messages
            ],
            " ON CONFLICT (channel, dedup_key) DO NOTHING RETURNING id, channel, dedup_key",
        )
        return {(channel, key): id_ for id_, channel, key in rows}

    def conversations(self, conn: Connection, keys: Sequence[str]) -> dict[str, ConversationState]:
        rows = _in_chunks(
            _cursor(conn),
            "SELECT key, state, data, version FROM conversations WHERE key IN (",
            "?",
            [(key,) for key in keys],
            ")",
        )
        return {
            key: ConversationState(
                key=key, name=name, data=dict(self._read_json(data)), version=version, exists=True
            )
            for key, name, data, version in rows
        }

    def touch_users(
        self, conn: Connection, keys: Sequence[tuple[str, str, str]], now: datetime
    ) -> dict[tuple[str, str, str], int]:
        seen = self._time(now)
        rows = _in_chunks(
            _cursor(conn),
            "INSERT INTO users (channel, account, external_id, member_status, created_at,"
            " last_seen_at) VALUES ",
            "(?, ?, ?, ?, ?, ?)",
            [(*key, "unknown", seen, seen) for key in keys],
            " ON CONFLICT (channel, account, external_id)"
            " DO UPDATE SET last_seen_at = excluded.last_seen_at"
            " RETURNING id, channel, account, external_id",
        )
        return {(c, a, e): id_ for id_, c, a, e in rows}

    def mark_finished(self, conn: Connection, items: Sequence[Finish], now: datetime) -> None:
        finished = self._time(now)
        _cursor(conn).executemany(
            "UPDATE messages SET status = ?, replies = ?, finished_at = ? WHERE id = ?",
            [(i.status, self._json(i.replies), finished, i.message_id) for i in items],
        )

    def update_state(self, conn: Connection, state: ConversationState, now: datetime) -> bool:
        cursor = _cursor(conn)
        cursor.execute(
            "UPDATE conversations SET state = ?, data = ?, version = ?, updated_at = ?"
            " WHERE key = ? AND version = ?",
            (
                state.name,
                self._json(state.data),
                state.version + 1,
                self._time(now),
                state.key,
                state.version,
            ),
        )
        return bool(cursor.rowcount == 1)


def _driver_leaves_transactions_to_us(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # sqlite3 would BEGIN (deferred) on its own


def _begin_immediate(conn: Connection) -> None:
    # Take the write lock when the transaction starts, waiting for it (busy_timeout) if
    # another instance holds it. A deferred transaction that reads first and writes later
    # fails at once with "database is locked" when another connection wrote in between.
    conn.connection.driver_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]


def _in_chunks(
    cursor: Any, head: str, placeholder: str, rows: Sequence[Sequence[Any]], tail: str
) -> list[Any]:
    """Run ``head`` + one ``placeholder`` per row (comma-separated) + ``tail`` for the rows,
    a few hundred at a time (SQLite takes at most 32766 parameters), and return every row
    the statements gave back."""
    found: list[Any] = []
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start : start + _ROWS_PER_STATEMENT]
        sql = head + ", ".join([placeholder] * len(chunk)) + tail
        cursor.execute(sql, [value for row in chunk for value in row])
        found.extend(cursor.fetchall())
    return found


def _same(value: Any) -> Any:
    return value


def _cursor(conn: Connection) -> Any:
    """A cursor of the connection's driver connection, inside the connection's transaction."""
    return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]


def _claim(
    conn: Connection, messages: Sequence[Incoming], now: datetime
) -> dict[tuple[str, str], int]:
    if not messages:
        return {}
    rows: list[dict[str, Any]] = [
        {
            "channel": m.channel,
            "dedup_key": m.dedup_key,
            "conversation_key": m.conversation_key,
            "kind": m.kind.value,
            "text": m.text[:4000],
            "status": "processing",
            "replies": [],
            "created_at": now,
        }
        for m in messages
    ]
    stmt = (
        _insert(conn, MESSAGES)
        .on_conflict_do_nothing(index_elements=["channel", "dedup_key"])
        .returning(MESSAGES.c.id, MESSAGES.c.channel, MESSAGES.c.dedup_key)
    )
    return {(r.channel, r.dedup_key): r.id for r in conn.execute(stmt, rows)}


def _write_finish(
    conn: Connection, statements: _Statements, items: Sequence[Finish], now: datetime
) -> list[bool]:
    if not items:
        return []
    statements.mark_finished(conn, items, now)
    results: list[bool] = []
    for item in items:
        results.append(item.state is None or _save_state(conn, statements, item.state, now))
        if item.outbox:
            conn.execute(
                _insert(conn, OUTBOX).on_conflict_do_nothing(index_elements=["dedup_key"]),
                [
                    {
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                        **row,
                    }
                    for row in item.outbox
                ],
            )
    return results


def _save_state(
    conn: Connection, statements: _Statements, state: ConversationState, now: datetime
) -> bool:
    if not state.exists:
        stmt = (
            _insert(conn, CONVERSATIONS)
            .values(key=state.key, state=state.name, data=state.data, version=1, updated_at=now)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(CONVERSATIONS.c.key)
        )
        if conn.execute(stmt).scalar_one_or_none() is None:
            return False
    elif not statements.update_state(conn, state, now):
        return False
    state.version += 1
    state.exists = True
    state.dirty = False
    return True


def _conversations(conn: Connection, keys: Sequence[str]) -> dict[str, ConversationState]:
    if not keys:
        return {}
    c = CONVERSATIONS.c
    rows = conn.execute(select(c.key, c.state, c.data, c.version).where(c.key.in_(keys)))
    return {
        r.key: ConversationState(
            key=r.key, name=r.state, data=dict(r.data), version=r.version, exists=True
        )
        for r in rows
    }


def _existing(
    conn: Connection, messages: Sequence[Incoming]
) -> dict[tuple[str, str], tuple[str, list[dict[str, str]]]]:
    if not messages:
        return {}
    c = MESSAGES.c
    rows = conn.execute(
        select(c.channel, c.dedup_key, c.status, c.replies).where(
            tuple_(c.channel, c.dedup_key).in_([_msg_key(m) for m in messages])
        )
    )
    return {(r.channel, r.dedup_key): (r.status, list(r.replies)) for r in rows}


def _msg_key(m: Incoming) -> tuple[str, str]:
    return (m.channel, m.dedup_key)


def _user_key(m: Incoming) -> tuple[str, str, str]:
    return (m.channel, m.account, m.user_id)

"""The message store's contract, held against each way it can write: the SQLAlchemy Core
statements on SQLite and on PostgreSQL, and the statements handed to the sqlite3 driver on
SQLite (the default there). Every behaviour is checked through the store's public methods and
the rows they leave in the database."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import Row, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Select

from bot.config import config_from_dict
from bot.messages import Incoming, Kind
from bot.storage.db import create_engine
from bot.storage.message_store import LOCKED_ATTEMPTS, Finish, MessageStore, StatementSet
from bot.storage.models import Conversation, Message, Outbox, User

ACCOUNT = "wx_contract"
START = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
# busy_timeout of the store's SQLite connection in the lock tests: the service uses 5 s; a
# shorter one lets a lock outlast every retry in about a second. The retry loop is the same.
BUSY_SECONDS = 0.5

# Raw sqlite3 statements on PostgreSQL do not exist, so that pair is never generated.
_SQLITE_PATHS = [
    pytest.param("sqlite", "core", id="sqlite-core"),
    pytest.param("sqlite", "sqlite-direct", id="sqlite-direct"),
]
_PATHS = [*_SQLITE_PATHS, pytest.param("postgres", "core", id="postgres-core")]
every_path = pytest.mark.parametrize(("db_url", "statements"), _PATHS, indirect=["db_url"])
sqlite_paths = pytest.mark.parametrize(("db_url", "statements"), _SQLITE_PATHS, indirect=["db_url"])


def text_from(user: str, key: str, text: str = "你好", channel: str = "mp") -> Incoming:
    return Incoming(channel, ACCOUNT, user, Kind.TEXT, key, text=text)


@dataclass
class Harness:
    engine: AsyncEngine
    statements: StatementSet
    wall: list[datetime]
    tick: list[float]
    stores: list[MessageStore]

    @property
    def now(self) -> datetime:
        return self.wall[0]

    def advance(self, seconds: float) -> None:
        self.wall[0] += timedelta(seconds=seconds)
        self.tick[0] += seconds

    def new_store(self, on_connect: Callable[[Any, Any], None] | None = None) -> MessageStore:
        """Another store on the same database (another instance of the service)."""
        store = MessageStore(
            self.engine,
            lambda: self.wall[0],
            monotonic=lambda: self.tick[0],
            statements=self.statements,
        )
        if on_connect is not None:
            assert store._sync is not None  # its own SQLite engine, connected on first write
            event.listen(store._sync, "connect", on_connect)
        self.stores.append(store)
        return store

    async def rows(self, query: Select[Any]) -> Sequence[Row[Any]]:
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).all()

    @property
    def sqlite_file(self) -> Path:
        database = make_url(str(self.engine.url)).database
        assert database is not None
        return Path(database)


@pytest.fixture
async def harness(db_url: str, statements: StatementSet) -> AsyncIterator[Harness]:
    engine = create_engine(config_from_dict({"database": {"url": db_url}}, env={}))
    h = Harness(engine, statements, [START], [1000.0], [])
    try:
        yield h
    finally:
        for store in h.stores:
            await store.close()
        await engine.dispose()


def _short_busy_timeout(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute(f"PRAGMA busy_timeout={int(BUSY_SECONDS * 1000)}")


class _Holder:
    """Another connection to the SQLite file (a `unionbot` command, a backup) holding the
    write lock until ``release`` or for ``seconds``."""

    def __init__(self, path: Path, seconds: float | None = None) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # The service keeps its file in WAL mode (the fixture's migration left it in the
        # default mode, which a connection cannot switch while another holds the lock).
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("BEGIN IMMEDIATE")
        self.timer = threading.Timer(seconds or 0, self.release)
        if seconds is not None:
            self.timer.start()

    def release(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")

    def close(self) -> None:
        self.timer.cancel()
        if self.timer.is_alive():
            self.timer.join()
        self.release()
        self.conn.close()


def _retries(caplog: pytest.LogCaptureFixture) -> int:
    return sum(r.getMessage() == "database locked, writing again" for r in caplog.records)


class TestMessageStore:
    @every_path
    async def test_a_new_message_is_claimed(self, harness: Harness) -> None:
        store = harness.new_store()
        incoming = text_from("o_new", "m-1", "我要入会")
        begun = await store.begin(incoming)

        assert begun.message_id is not None
        assert (begun.status, begun.replies) == ("processing", [])
        assert begun.state is not None
        assert begun.state.key == incoming.conversation_key
        assert (begun.state.name, begun.state.data, begun.state.version) == (None, {}, 0)
        assert not begun.state.exists
        m = Message.__table__.c
        rows = await harness.rows(
            select(m.id, m.channel, m.dedup_key, m.conversation_key, m.kind, m.text).add_columns(
                m.status, m.replies, m.created_at, m.finished_at
            )
        )
        assert [tuple(r) for r in rows] == [
            (
                begun.message_id,
                "mp",
                "m-1",
                incoming.conversation_key,
                "text",
                "我要入会",
                "processing",
                [],
                harness.now,
                None,
            )
        ]

    @every_path
    async def test_the_same_message_again_is_a_duplicate_with_its_status_and_replies(
        self, harness: Harness
    ) -> None:
        store = harness.new_store()
        incoming = text_from("o_dup", "m-2")
        first = await store.begin(incoming)
        assert first.message_id is not None
        replies = [{"type": "text", "text": "请回复数字选择服务"}]
        assert await store.finish(Finish(first.message_id, "done", replies))

        again = await store.begin(incoming)
        assert (again.message_id, again.status, again.replies) == (None, "done", replies)
        assert again.state is None and again.user_id is None
        # Another instance recognises it the same way.
        elsewhere = await harness.new_store().begin(incoming)
        assert (elsewhere.message_id, elsewhere.status, elsewhere.replies) == (
            None,
            "done",
            replies,
        )
        # The dedup key is the platform's: the same key on another channel is a new message.
        other_channel = await store.begin(text_from("o_dup", "m-2", channel="work"))
        assert other_channel.message_id not in (None, first.message_id)
        m = Message.__table__.c
        rows = await harness.rows(select(m.channel, m.dedup_key).order_by(m.id))
        assert [tuple(r) for r in rows] == [("mp", "m-2"), ("work", "m-2")]

    @every_path
    async def test_a_retry_while_the_first_is_still_processing_gets_processing(
        self, harness: Harness
    ) -> None:
        store = harness.new_store()
        incoming = text_from("o_retry", "m-3")
        first = await store.begin(incoming)
        assert first.message_id is not None

        retry = await harness.new_store().begin(incoming)
        assert (retry.message_id, retry.status, retry.replies) == (None, "processing", [])
        assert await store.finish(Finish(first.message_id, "deferred", []))
        late = await store.begin(incoming)
        assert (late.message_id, late.status) == (None, "deferred")
        count = await harness.rows(select(func.count()).select_from(Message))
        assert count[0][0] == 1

    @every_path
    async def test_a_message_claimed_earlier_is_resumed_under_its_id(
        self, harness: Harness
    ) -> None:
        # Crash recovery hands back the id of a message a dead process had claimed.
        store = harness.new_store()
        incoming = text_from("o_resume", "m-4")
        first = await store.begin(incoming)
        assert first.message_id is not None

        resumed = await harness.new_store().begin(incoming, claimed_id=first.message_id)
        assert (resumed.message_id, resumed.status) == (first.message_id, "processing")
        assert resumed.user_id == first.user_id
        assert resumed.state is not None and resumed.state.key == incoming.conversation_key
        count = await harness.rows(select(func.count()).select_from(Message))
        assert count[0][0] == 1

    @every_path
    async def test_state_is_saved_on_finish_and_a_stale_version_conflicts(
        self, harness: Harness
    ) -> None:
        store = harness.new_store()
        key = text_from("o_state", "s-1").conversation_key
        first = await store.begin(text_from("o_state", "s-1"))
        assert first.message_id is not None and first.state is not None
        first.state.set("form:medicine", step=1, items=["感冒药"])
        assert await store.finish(Finish(first.message_id, "done", [], state=first.state))
        assert (first.state.version, first.state.exists, first.state.dirty) == (1, True, False)

        loaded = await store.load_state(key)
        assert (loaded.name, loaded.data, loaded.version, loaded.exists) == (
            "form:medicine",
            {"step": 1, "items": ["感冒药"]},
            1,
            True,
        )

        # Two messages read version 1; the first to finish wins, the other is told to rerun.
        second = await store.begin(text_from("o_state", "s-2"))
        assert second.message_id is not None and second.state is not None
        assert (second.state.name, second.state.data, second.state.version) == (
            "form:medicine",
            {"step": 1, "items": ["感冒药"]},
            1,
        )
        stale = await harness.new_store().load_state(key)
        second.state.update(step=2)
        assert await store.finish(Finish(second.message_id, "done", [], state=second.state))
        assert second.state.version == 2

        third = await store.begin(text_from("o_state", "s-3"))
        assert third.message_id is not None
        stale.update(step=99)
        assert not await store.finish(Finish(third.message_id, "done", [], state=stale))
        assert stale.version == 1 and stale.dirty

        c = Conversation.__table__.c
        rows = await harness.rows(select(c.key, c.state, c.data, c.version, c.updated_at))
        assert [tuple(r) for r in rows] == [
            (key, "form:medicine", {"step": 2, "items": ["感冒药"]}, 2, harness.now)
        ]
        # The conflicting finish still stored its message; only the state was refused.
        m = Message.__table__.c
        status = await harness.rows(select(m.status).where(m.id == third.message_id))
        assert status[0][0] == "done"

    @every_path
    async def test_a_new_state_written_by_two_instances_conflicts(self, harness: Harness) -> None:
        a, b = harness.new_store(), harness.new_store()
        key = text_from("o_new_state", "n-1").conversation_key
        ba = await a.begin(text_from("o_new_state", "n-1"))
        bb = await b.begin(text_from("o_new_state", "n-2"))
        assert ba.message_id is not None and ba.state is not None
        assert bb.message_id is not None and bb.state is not None
        ba.state.set("form:a")
        bb.state.set("form:b")
        assert await a.finish(Finish(ba.message_id, "done", [], state=ba.state))
        assert not await b.finish(Finish(bb.message_id, "done", [], state=bb.state))
        loaded = await b.load_state(key)
        assert (loaded.name, loaded.version) == ("form:a", 1)

    @every_path
    async def test_a_user_is_created_once_and_keeps_its_id(self, harness: Harness) -> None:
        """It skips writing last_seen_at for a worker seen within a minute; a worker seen longer
        ago is written again and forgotten meanwhile, so a day of many workers does not grow
        the process."""
        store = harness.new_store()
        first = await asyncio.gather(
            *(store.begin(text_from(f"o_{i}", f"u-{i}-0")) for i in range(300))
        )
        u = User.__table__.c
        rows = await harness.rows(select(u.external_id, u.id, u.created_at, u.last_seen_at))
        ids = {r.external_id: r.id for r in rows}
        assert len(rows) == 300
        assert [b.user_id for b in first] == [ids[f"o_{i}"] for i in range(300)]
        assert {(r.created_at, r.last_seen_at) for r in rows} == {(START, START)}
        assert len(store._touched) == 300

        async def seen(user: str) -> tuple[int, datetime, datetime]:
            found = await harness.rows(
                select(u.id, u.created_at, u.last_seen_at).where(u.external_id == user)
            )
            assert len(found) == 1
            return found[0][0], found[0][1], found[0][2]

        harness.advance(30)
        again = await store.begin(text_from("o_0", "u-0-1"))
        assert again.user_id == ids["o_0"]
        assert await seen("o_0") == (ids["o_0"], START, START)  # within the minute: not written

        harness.advance(31)
        later = await store.begin(text_from("o_0", "u-0-2"))
        assert later.user_id == ids["o_0"]
        assert await seen("o_0") == (ids["o_0"], START, harness.now)  # a minute on: written
        assert list(store._touched) == [("mp", ACCOUNT, "o_0")]  # the other 299 forgotten

        # Another instance (nothing remembered) finds the same user, not a new one.
        elsewhere = await harness.new_store().begin(text_from("o_1", "u-1-1"))
        assert elsewhere.user_id == ids["o_1"]
        assert await seen("o_1") == (ids["o_1"], START, harness.now)
        count = await harness.rows(select(func.count()).select_from(User))
        assert count[0][0] == 300

    @every_path
    async def test_replies_are_stored_with_the_message(self, harness: Harness) -> None:
        store = harness.new_store()
        done = await store.begin(text_from("o_r1", "r-1"))
        late = await store.begin(text_from("o_r2", "r-2"))
        assert done.message_id is not None and late.message_id is not None
        harness.advance(2)
        replies = [
            {"type": "text", "text": "工会电话：12351"},
            {"type": "markdown", "text": "**已收到**"},
        ]
        outbox = [
            {
                "dedup_key": "reply:mp:r-2:0",
                "channel": "mp_cs",
                "recipient": "o_r2",
                "payload": {"text": "稍后答复", "type": "text"},
            }
        ]
        saved = await asyncio.gather(
            store.finish(Finish(done.message_id, "done", replies)),
            store.finish(Finish(late.message_id, "deferred", [], outbox=outbox)),
        )
        assert saved == [True, True]

        m = Message.__table__.c
        rows = await harness.rows(
            select(m.dedup_key, m.status, m.replies, m.created_at, m.finished_at).order_by(m.id)
        )
        assert [tuple(r) for r in rows] == [
            ("r-1", "done", replies, START, harness.now),
            ("r-2", "deferred", [], START, harness.now),
        ]
        o = Outbox.__table__.c
        queued = await harness.rows(
            select(o.dedup_key, o.channel, o.recipient, o.payload, o.status, o.next_attempt_at)
        )
        assert [tuple(r) for r in queued] == [
            (
                "reply:mp:r-2:0",
                "mp_cs",
                "o_r2",
                {"text": "稍后答复", "type": "text"},
                "pending",
                harness.now,
            )
        ]

    @every_path
    async def test_many_messages_in_one_batch_are_each_claimed_once(self, harness: Harness) -> None:
        store = harness.new_store()
        batches: list[int] = []
        write = store._writer._write

        async def counted(ops: Any) -> Any:
            batches.append(len(ops))
            return await write(ops)

        store._writer._write = counted  # type: ignore[method-assign]
        # 100 messages from 100 workers, each arriving twice (a retry) in the same batch.
        incoming = [text_from(f"o_b{i}", f"b-{i}", f"第{i}条") for i in range(100)]
        begun = await asyncio.gather(*(store.begin(m) for m in incoming + incoming))
        assert batches == [200]

        claimed = [b for b in begun if b.message_id is not None]
        assert len(claimed) == 100
        assert {b.message_id for b in claimed} == {b.message_id for b in begun[:100]}
        assert all((b.message_id, b.status) == (None, "processing") for b in begun[100:])
        m = Message.__table__.c
        rows = await harness.rows(select(m.id, m.dedup_key, m.text))
        assert {(r.id, r.dedup_key, r.text) for r in rows} == {
            (b.message_id, f"b-{i}", f"第{i}条") for i, b in enumerate(begun[:100])
        }
        assert len({b.user_id for b in claimed}) == 100

    @every_path
    async def test_text_longer_than_4000_characters_is_cut(self, harness: Harness) -> None:
        store = harness.new_store()
        long = "工" * 3999 + "会" + "资" * 500
        begun = await store.begin(text_from("o_long", "l-1", long))
        assert begun.message_id is not None
        m = Message.__table__.c
        rows = await harness.rows(select(m.text))
        assert rows[0][0] == "工" * 3999 + "会"

    @sqlite_paths
    async def test_a_short_lock_is_waited_out(
        self, harness: Harness, caplog: pytest.LogCaptureFixture
    ) -> None:
        store = harness.new_store(_short_busy_timeout)
        holder = _Holder(harness.sqlite_file, BUSY_SECONDS / 5)
        try:
            with caplog.at_level(logging.WARNING, "bot.storage.message_store"):
                begun = await store.begin(text_from("o_wait", "w-1"))
        finally:
            holder.close()
        assert begun.message_id is not None
        assert _retries(caplog) == 0  # busy_timeout alone waited it out
        rows = await harness.rows(select(Message.__table__.c.dedup_key))
        assert [r[0] for r in rows] == ["w-1"]

    @sqlite_paths
    async def test_a_lock_held_past_busy_timeout_is_written_again(
        self, harness: Harness, caplog: pytest.LogCaptureFixture
    ) -> None:
        # Another process keeps the file locked for longer than busy_timeout: the message is
        # claimed once the lock is gone, not refused.
        store = harness.new_store(_short_busy_timeout)
        holder = _Holder(harness.sqlite_file, BUSY_SECONDS * 1.5)
        try:
            with caplog.at_level(logging.WARNING, "bot.storage.message_store"):
                begun = await store.begin(text_from("o_wait", "w-2"))
        finally:
            holder.close()
        assert begun.message_id is not None
        assert 1 <= _retries(caplog) < LOCKED_ATTEMPTS
        rows = await harness.rows(select(Message.__table__.c.dedup_key))
        assert [r[0] for r in rows] == ["w-2"]

    @sqlite_paths
    async def test_a_lock_held_past_the_retries_is_sqlalchemys_operational_error(
        self, harness: Harness, caplog: pytest.LogCaptureFixture
    ) -> None:
        store = harness.new_store(_short_busy_timeout)
        incoming = text_from("o_wait", "w-3")
        holder = _Holder(harness.sqlite_file)
        try:
            with (
                caplog.at_level(logging.WARNING, "bot.storage.message_store"),
                pytest.raises(OperationalError, match="locked") as raised,
            ):
                await store.begin(incoming)
        finally:
            holder.close()
        assert not isinstance(raised.value, sqlite3.Error)
        assert isinstance(raised.value.orig, sqlite3.OperationalError)
        assert _retries(caplog) == LOCKED_ATTEMPTS - 1

        # Nothing of it was written; once the lock is gone the same message is claimed.
        assert await harness.rows(select(Message.__table__.c.id)) == []
        begun = await store.begin(incoming)
        assert begun.message_id is not None
        users = await harness.rows(select(User.__table__.c.id))
        assert [r[0] for r in users] == [begun.user_id]


async def test_the_sqlite_direct_statements_are_refused_on_postgresql(pg_url: str) -> None:
    engine = create_engine(config_from_dict({"database": {"url": pg_url}}, env={}))
    try:
        with pytest.raises(ValueError, match="SQLite only"):
            MessageStore(engine, lambda: START, statements="sqlite-direct")
    finally:
        await engine.dispose()

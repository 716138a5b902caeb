"""Does the service slow as its tables grow? Two servers on SQLite, one on an empty database and
one on a database whose message log already holds a million rows (with the users and
conversation states such a log comes with), driven in alternating rounds with the same kind of
traffic: distinct worker questions through the knowledge base, from many workers.

The seeded rows are written straight into a migrated database with the columns' own
SQLAlchemy encodings, so the service reads them as it reads its own.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Column, Table
from sqlalchemy.dialects import sqlite

from bot.storage.models import Message
from tests.bench.callbacks import (
    PROJECT,
    ROUNDS,
    _has_taskset,
    alternating_rounds,
    drive,
    free_port,
    serve_command,
    start,
    summary,
    write_config,
)
from tests.support import wechat

SEEDED_MESSAGES = int(os.environ.get("UNIONBOT_BENCH_LOG_ROWS", "1000000"))
MESSAGES_PER_WORKER = 20  # a million messages from 50,000 workers
ROUND_REQUESTS = 3_000

_PREFIXES = ["", "", "请问", "你好，", "您好 ", "老师，", "麻烦问下，", "师傅 "]
_SUFFIXES = ["", "", "？", "?", "啊", "呢", "。谢谢", "！！", "～"]


def worker_questions() -> list[str]:
    """Every question of the evaluation files, in scope or not: how workers really ask."""
    texts: list[str] = []
    for path in sorted((PROJECT / "content" / "kb").glob("eval_*.toml")):
        texts.extend(case["text"] for case in tomllib.loads(path.read_text("utf-8"))["case"])
    return texts


def question_messages(
    count: int, first_id: int, rng: random.Random, questions: list[str]
) -> list[wechat.Signed]:
    """``count`` AES callbacks of worker questions (with the greetings and punctuation people
    add), each from one of 2,000 workers and with a new MsgId."""
    return [
        wechat.mp_aes(
            "/wechat/mp",
            wechat.text_xml(
                f"o_worker_{rng.randrange(2000)}",
                rng.choice(_PREFIXES) + rng.choice(questions) + rng.choice(_SUFFIXES),
                first_id + i,
            ),
        )
        for i in range(count)
    ]


def _encoder(column: Column[Any]) -> Callable[[Any], Any]:
    bind = column.type._cached_bind_processor(sqlite.dialect())
    return bind or (lambda value: value)


def seed(database: Path, messages: int, questions: list[str]) -> float:
    """Fill a migrated database with ``messages`` finished messages of the last 180 days, their
    workers and conversation states; the seconds it took."""
    started = time.perf_counter()
    m = cast(Table, Message.__table__).c
    when, as_json = _encoder(m.created_at), _encoder(m.replies)
    workers = max(1, messages // MESSAGES_PER_WORKER)
    now = datetime.now(UTC)
    rng = random.Random(7)
    reply = as_json([{"text": "您好，这是工会的答复。", "type": "text"}])

    def message_rows() -> Iterator[tuple[Any, ...]]:
        for i in range(messages):
            at = when(now - timedelta(seconds=(messages - i) * 15))
            key = f"mp:{wechat.MP_APP_ID}:-:o_seed_{i % workers}"
            yield ("mp", f"seed{i}", key, "text", rng.choice(questions), "done", reply, at, at)

    def worker_rows() -> Iterator[tuple[Any, ...]]:
        seen = when(now - timedelta(days=1))
        for w in range(workers):
            yield ("mp", wechat.MP_APP_ID, f"o_seed_{w}", "unknown", seen, seen)

    def state_rows() -> Iterator[tuple[Any, ...]]:
        at = when(now - timedelta(days=1))
        empty = as_json({})
        for w in range(workers):
            yield (f"mp:{wechat.MP_APP_ID}:-:o_seed_{w}", None, empty, 3, at)

    db = sqlite3.connect(database)
    with db:
        db.executemany(
            "INSERT INTO messages (channel, dedup_key, conversation_key, kind, text, status,"
            " replies, created_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            message_rows(),
        )
        db.executemany(
            "INSERT INTO users (channel, account, external_id, member_status, created_at,"
            " last_seen_at) VALUES (?, ?, ?, ?, ?, ?)",
            worker_rows(),
        )
        db.executemany(
            "INSERT INTO conversations (key, state, data, version, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            state_rows(),
        )
    db.execute("ANALYZE")
    db.close()
    return time.perf_counter() - started


def _migrate(config: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "handlers.cli", "db", "upgrade", "--config", str(config)],
        cwd=PROJECT,
        check=True,
        capture_output=True,
    )


def _count(database: Path, table: str) -> int:
    with sqlite3.connect(database) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def run(rows: int = SEEDED_MESSAGES) -> list[str]:
    if _has_taskset():
        os.sched_setaffinity(0, {1})
    questions = worker_questions()
    rng = random.Random(11)
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        seeded_db = folder / "seeded.db"
        seeded_name = f"{rows:,}-row message log"
        databases = {"empty message log": folder / "empty.db", seeded_name: seeded_db}
        configs = {name: write_config(folder, db) for name, db in databases.items()}
        for config in configs.values():
            _migrate(config)
        seconds = seed(seeded_db, rows, questions)
        lines.append(
            f"seeded {rows:,} messages, {_count(seeded_db, 'users'):,} workers and as many "
            f"conversation states in {seconds:.0f} s"
        )
        ports = {name: free_port() for name in configs}
        procs = [
            start([*serve_command(config), str(ports[name])], ports[name])
            for name, config in configs.items()
        ]
        try:
            names = list(configs)
            for n, name in enumerate(names):  # warm up: jieba, the classifier, the caches
                asyncio.run(
                    drive(name, ports[name], question_messages(500, n * 10**6, rng, questions))
                )
            results = alternating_rounds(
                ports,
                lambda r, n: question_messages(
                    ROUND_REQUESTS, 10**8 + r * 10**6 + n * 10**5, rng, questions
                ),
            )
            rss = {name: _rss_mb(proc.pid) for name, proc in zip(names, procs, strict=True)}
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)
        empty, seeded, ratio = summary("seeded / empty throughput", *results.values())
        lines.append(
            f"{ROUND_REQUESTS * ROUNDS:,} distinct worker questions each, from 2,000 workers, "
            f"{ROUNDS} alternating rounds"
        )
        lines.extend(f"{r.line()}   RSS {rss[r.name]:.0f} MB" for r in (empty, seeded))
        lines.append(ratio)
    return lines


if __name__ == "__main__":
    print("\n".join(run(int(sys.argv[1]) if len(sys.argv) > 1 else SEEDED_MESSAGES)))

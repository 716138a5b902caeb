"""From an expanded audience to outbox rows: the text for each recipient, when each may go,
and the rows themselves, written a chunk at a time with the run's lease renewed.

Each delivery row and its outbox row are written in the same transaction, both under unique
keys (run + recipient, ``bcast:<run>:<channel>:<recipient>``): writing a chunk twice (after
a crash, or by an instance that took the run over) adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

import jinja2
from jinja2 import meta
from sqlalchemy.ext.asyncio import AsyncSession

from bot.outbound.ratelimit import SlidingWindowLimiter
from bot.render import Renderer
from bot.storage.models import Outbox
from bot.storage.repo import upsert_insert
from scheduler.audiences import MP, WORK, Recipient
from scheduler.definitions import Broadcast
from scheduler.models import Delivery
from scheduler.surveys import SurveyStats

CHUNK = 1000
WEEKDAYS = "一二三四五六日"
SAMPLE_RECIPIENT = Recipient(WORK, "sample", 0, "张师傅")


def dedup_key(run_id: int, recipient: Recipient) -> str:
    return f"bcast:{run_id}:{recipient.channel}:{recipient.recipient}"


class Composer:
    """Renders a broadcast's text. A template that does not use ``recipient`` is rendered
    once per run, not once per worker."""

    def __init__(self, render: Renderer, broadcast: Broadcast) -> None:
        env = render.env
        if broadcast.text is not None:
            source = broadcast.text
            self.template = env.from_string(source)
        else:
            name = broadcast.template or ""
            name = name if name.endswith(".j2") else f"{name}.txt.j2"
            assert env.loader is not None
            source = env.loader.get_source(env, name)[0]
            self.template = env.get_template(name)
        self.personal = "recipient" in meta.find_undeclared_variables(env.parse(source))

    def for_run(self, context: Mapping[str, Any]) -> Callable[[Recipient], str]:
        """The text for each recipient of one run."""
        if not self.personal:
            text = self.template.render(**context).strip()
            return lambda _recipient: text

        def personal(recipient: Recipient) -> str:
            values = {
                **context,
                "recipient": {"name": recipient.name, "is_group": recipient.is_group},
            }
            return self.template.render(**values).strip()

        return personal


def template_context(
    broadcast: Broadcast,
    scheduled_at: datetime,
    tz: tzinfo,
    bot_name: str,
    survey: SurveyStats | None = None,
) -> dict[str, Any]:
    local = scheduled_at.astimezone(tz)
    return {
        "broadcast": {"id": broadcast.id, "title": broadcast.title},
        "date": f"{local.month}月{local.day}日",
        "weekday": f"星期{WEEKDAYS[local.weekday()]}",
        "time": f"{local:%H:%M}",
        "today": local.date(),
        "event": dict(broadcast.event),
        "form": broadcast.form or "",
        "bot_name": bot_name,
        "survey": {
            "answered": survey.answered if survey else 0,
            "audience": survey.audience if survey else 0,
            "writers": survey.writers if survey else 0,
        },
    }


def check_renders(composer: Composer, context: Mapping[str, Any]) -> None:
    """Render once with sample values, so a missing ``event`` key fails at start, not at 08:00."""
    try:
        composer.for_run(context)(SAMPLE_RECIPIENT)
    except jinja2.TemplateError as exc:
        raise ValueError(f"template does not render: {exc}") from None


def pace(
    recipients: Sequence[Recipient], send_at: datetime, limiter: SlidingWindowLimiter
) -> list[datetime]:
    """When each row becomes due: spread at the API's rate, so the outbox finds rows due a
    few at a time and a worker's own reply is not queued behind a whole broadcast. The spread
    is in the database, so it holds across instances and restarts."""
    counts: dict[tuple[str, str] | None, int] = {}
    due: list[datetime] = []
    for n, r in enumerate(recipients):
        key = limiter.key(r.channel, r.recipient)
        rate = limiter.rate_for(r.channel)
        index = counts.get(key, 0)
        counts[key] = index + 1
        offset = index / rate.per_second if key is not None and rate is not None else 0.0
        # The microseconds keep every row's time distinct: they are sent in audience order.
        due.append(send_at + timedelta(seconds=offset, microseconds=n))
    return due


@dataclass(frozen=True, slots=True)
class Row:
    recipient: Recipient
    text: str | None
    due: datetime


async def write_chunk(
    session: AsyncSession, run_id: int, rows: Sequence[Row], fmt: str, now: datetime
) -> None:
    deliveries = [
        {
            "run_id": run_id,
            "channel": row.recipient.channel,
            "recipient": row.recipient.recipient,
            "user_id": row.recipient.user_id,
            "dedup_key": dedup_key(run_id, row.recipient),
            "note": row.recipient.note,
        }
        for row in rows
    ]
    await session.execute(
        upsert_insert(session, Delivery).on_conflict_do_nothing(
            index_elements=["run_id", "channel", "recipient"]
        ),
        deliveries,
    )
    sends = [
        {
            "dedup_key": dedup_key(run_id, row.recipient),
            "channel": row.recipient.channel,
            "recipient": row.recipient.recipient,
            # The Official Account's customer-service messages are plain text only.
            "payload": {
                "type": "text" if row.recipient.channel == MP else fmt,
                "text": row.text,
            },
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": row.due,
            "created_at": now,
        }
        for row in rows
        if row.recipient.note is None and row.text is not None
    ]
    if sends:
        await session.execute(
            upsert_insert(session, Outbox).on_conflict_do_nothing(index_elements=["dedup_key"]),
            sends,
        )

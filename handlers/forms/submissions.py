"""Submitted forms: store one with its number and card, change its status (telling the
worker), and the queries behind 我的申请 and the export."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import Incoming
from bot.render import CHINA
from bot.services import Services
from handlers.forms import engine, notify
from handlers.forms.definitions import FormDef, FormRegistry
from handlers.forms.models import FormStatusChange, FormSubmission
from handlers.forms.numbering import format_number, next_seq

log = logging.getLogger(__name__)

# Which status may follow which. done and cancelled are final.
NEXT_STATUSES = {
    "submitted": ("accepted", "done", "cancelled"),
    "accepted": ("done", "cancelled"),
    "done": (),
    "cancelled": (),
}
OPEN_STATUSES = ("submitted", "accepted")
SOURCE_NAMES = {"mp": "公众号", "work": "企业微信", "aibot": "智能机器人", "dev": "测试对话"}


class StatusError(ValueError):
    """The status change is not allowed; the message says why, in Chinese."""


@dataclass(frozen=True)
class StatusChanged:
    submission: FormSubmission
    old: str
    pushed: bool  # the worker's channel can be pushed to (else they see it in 我的申请)


def source_of(sub: FormSubmission) -> str:
    name = SOURCE_NAMES.get(sub.channel, sub.channel)
    return f"{name} · 群 {sub.chat_id}" if sub.chat_id else name


async def submit(
    services: Services, form: FormDef, message: Incoming, answers: dict[str, Any]
) -> FormSubmission:
    """Store the submission under a new number and queue its card for the group robot.
    Idempotent per inbound message: a handler run again after a state conflict gets the
    same submission back."""
    source_key = f"{message.channel}:{message.account}:{message.dedup_key}"
    async with services.sessions() as session:
        existing = (
            await session.execute(
                select(FormSubmission).where(FormSubmission.source_key == source_key)
            )
        ).scalar_one_or_none()
    if existing is not None:
        return existing
    now = services.clock()
    day = now.astimezone(CHINA).date()
    async with services.sessions.begin() as session:
        # The counter bump is the transaction's first statement: SQLite takes its write lock
        # up front instead of upgrading a read lock, which could fail under a second writer.
        seq = await next_seq(session, form.id, day)
        sub = FormSubmission(
            number=format_number(form.prefix, day, seq),
            form_id=form.id,
            day=day.isoformat(),
            seq=seq,
            status="submitted",
            channel=message.channel,
            account=message.account,
            user_id=message.user_id,
            chat_id=message.chat_id,
            conversation_key=message.conversation_key,
            source_key=source_key,
            answers=answers,
            created_at=now,
            updated_at=now,
        )
        session.add(sub)
        await session.flush()
        await _history(session, sub, None, "submitted", f"worker:{message.user_id[-6:]}", "", now)
        card = services.render(
            "form_card",
            form=form,
            number=sub.number,
            items=engine.summary(form, answers, masked=True),
            created=now,
            source=source_of(sub),
        )
        await notify.to_robots(
            services, session, notify.robots_for(services, form), f"form:{sub.number}:card", card
        )
    services.wake_outbox()
    log.info("form submitted", extra={"form": form.id, "number": sub.number})
    return sub


async def set_status(
    services: Services,
    registry: FormRegistry,
    number: str,
    status: str,
    actor: str,
    note: str = "",
) -> StatusChanged:
    async with services.sessions() as session:
        sub = await find(session, number)
    if sub is None:
        raise StatusError(f"没有编号为 {number} 的申请。")
    old = sub.status
    form = registry.get(sub.form_id)
    title = form.title if form is not None else sub.form_id

    def label(value: str) -> str:
        return form.status_label(value) if form is not None else value

    if status == old:
        raise StatusError(f"{number} 已经是「{label(old)}」了。")
    if status not in NEXT_STATUSES.get(old, ()):
        raise StatusError(f"{number} 现在是「{label(old)}」，不能改为「{label(status)}」。")
    now = services.clock()
    async with services.sessions.begin() as session:
        # Only from the status we read: two volunteers changing it at once cannot both win.
        result = await session.execute(
            update(FormSubmission)
            .where(FormSubmission.id == sub.id, FormSubmission.status == old)
            .values(status=status, updated_at=now)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise StatusError(f"{number} 的状态刚被别人改过，请重试。")
        await _history(session, sub, old, status, actor, note, now)
        pushed = await notify.to_worker(
            session,
            channel=sub.channel,
            user_id=sub.user_id,
            dedup_key=f"form:{number}:status:{status}",
            text=services.render(
                "form_status", title=title, number=number, label=label(status), note=note
            ),
            now=now,
        )
    sub.status = status
    services.wake_outbox()
    log.info("form status changed", extra={"number": number, "from": old, "to": status})
    return StatusChanged(sub, old, pushed)


async def find(session: AsyncSession, number: str) -> FormSubmission | None:
    return (
        await session.execute(select(FormSubmission).where(FormSubmission.number == number))
    ).scalar_one_or_none()


async def of_worker(
    services: Services, channel: str, account: str, user_id: str, limit: int = 10
) -> list[FormSubmission]:
    """The worker's latest submissions, from any group or private chat."""
    async with services.sessions() as session:
        rows = await session.execute(
            select(FormSubmission)
            .where(
                FormSubmission.channel == channel,
                FormSubmission.account == account,
                FormSubmission.user_id == user_id,
            )
            .order_by(FormSubmission.id.desc())
            .limit(limit)
        )
        return list(rows.scalars())


async def on_day(services: Services, form_id: str | None, day: date) -> list[FormSubmission]:
    query = select(FormSubmission).where(FormSubmission.day == day.isoformat())
    if form_id is not None:
        query = query.where(FormSubmission.form_id == form_id)
    async with services.sessions() as session:
        rows = await session.execute(query.order_by(FormSubmission.form_id, FormSubmission.seq))
        return list(rows.scalars())


async def _history(
    session: AsyncSession,
    sub: FormSubmission,
    old: str | None,
    new: str,
    actor: str,
    note: str,
    now: datetime,
) -> None:
    session.add(
        FormStatusChange(
            submission_id=sub.id,
            from_status=old,
            to_status=new,
            actor=actor,
            note=note[:500],
            created_at=now,
        )
    )

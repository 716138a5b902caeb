"""Forms left alone: a reminder after ``forms.reminder_minutes``, dropped after
``forms.expire_minutes``.

Driven from the conversations table (a Periodic job), so both still happen after a restart.
Each change is a conditional UPDATE on the conversation's version: a worker who answers at
the same moment wins, and two instances never remind twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from bot.messages import split_conversation_key
from bot.services import Services
from bot.storage.models import AuditLog, Conversation
from handlers.forms import engine, notify, prompts
from handlers.forms.definitions import FormRegistry
from handlers.services import app_services

log = logging.getLogger(__name__)

STATE_PREFIX = "form:"


async def remind_and_expire(services: Services) -> None:
    registry = app_services(services).forms
    cfg = services.config.forms
    now = services.clock()
    expire_before = now - timedelta(minutes=cfg.expire_minutes)
    remind_before = now - timedelta(minutes=cfg.reminder_minutes)
    async with services.sessions() as session:
        rows = (
            await session.execute(
                select(
                    Conversation.key,
                    Conversation.state,
                    Conversation.data,
                    Conversation.version,
                    Conversation.updated_at,
                ).where(
                    Conversation.state.like(f"{STATE_PREFIX}%"),
                    Conversation.updated_at < remind_before,
                )
            )
        ).all()
    for row in rows:
        if row.updated_at < expire_before:
            await _expire(services, registry, row.key, str(row.state), row.version, now)
        elif not (row.data or {}).get("reminded"):
            await _remind(services, registry, row.key, str(row.state), row.data, row.version, now)


async def _remind(
    services: Services,
    registry: FormRegistry,
    key: str,
    state: str,
    data: dict[str, Any],
    version: int,
    now: datetime,
) -> None:
    form = registry.get(state.removeprefix(STATE_PREFIX))
    channel, _, _, user = split_conversation_key(key)
    async with services.sessions.begin() as session:
        # updated_at stays: a reminder is not the worker's activity, expiry counts from it.
        result = await session.execute(
            update(Conversation)
            .where(Conversation.key == key, Conversation.version == version)
            .values(data={**data, "reminded": True}, version=version + 1)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return  # the worker answered meanwhile, or another instance reminded
        if form is None:
            return
        progress = engine.Progress.from_data(data)
        text = services.render(
            "form_reminder",
            form=form,
            question=prompts.question(services, form, progress),
        )
        pushed = await notify.to_worker(
            session,
            channel=channel,
            user_id=user,
            dedup_key=f"form:remind:{key}:{version}",
            text=text,
            now=now,
        )
    services.wake_outbox()
    log.info("form reminder", extra={"form": form.id, "pushed": pushed})


async def _expire(
    services: Services,
    registry: FormRegistry,
    key: str,
    state: str,
    version: int,
    now: datetime,
) -> None:
    form_id = state.removeprefix(STATE_PREFIX)
    form = registry.get(form_id)
    channel, _, _, user = split_conversation_key(key)
    async with services.sessions.begin() as session:
        result = await session.execute(
            update(Conversation)
            .where(Conversation.key == key, Conversation.version == version)
            .values(state=None, data={}, version=version + 1, updated_at=now)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return
        pushed = False
        if form is not None:
            pushed = await notify.to_worker(
                session,
                channel=channel,
                user_id=user,
                dedup_key=f"form:expired:{key}:{version}",
                text=services.render(
                    "form_expired", form=form, keyword=form.keywords[0] if form.keywords else ""
                ),
                now=now,
            )
        # The dev chat and group @-mentions cannot be pushed to: the audit log is the record.
        session.add(
            AuditLog(
                actor="forms",
                action="form_expired",
                subject=form_id[:128],
                detail={"conversation": key, "pushed": pushed},
                created_at=now,
            )
        )
    services.wake_outbox()
    log.info("form expired", extra={"form": form_id, "pushed": pushed})

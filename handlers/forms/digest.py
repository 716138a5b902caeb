"""The daily digest: at ``forms.digest_time`` (Beijing time) each group robot gets the day's
submissions of the forms it is notified about, and how many older ones are still open.

A Periodic job checks the time every minute; the first run past the hour inserts the day into
``form_digests`` (primary key), so the digest goes out once, whichever instance gets there.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date, datetime, time

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.logs import mask_phone
from bot.render import CHINA
from bot.services import Services
from bot.storage.repo import upsert_insert
from handlers.forms import notify
from handlers.forms.definitions import FormDef, FormRegistry
from handlers.forms.models import FormDigest, FormSubmission
from handlers.forms.submissions import OPEN_STATUSES
from handlers.services import app_services

log = logging.getLogger(__name__)


def digest_clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


async def send_digest(services: Services) -> bool:
    """Send today's digest if it is time and nobody has; True when this call sent it."""
    registry = app_services(services).forms
    now = services.clock()
    local = now.astimezone(CHINA)
    if local.time().replace(tzinfo=None) < digest_clock(services.config.forms.digest_time):
        return False
    day = local.date()
    async with services.sessions.begin() as session:
        if not await _claim_day(session, day, now):
            return False
        rows = await _rows(session, day)
        open_before = await _open_before(session, day)
        for robot, forms in _robots(services, registry).items():
            sections = [
                {"form": f, "rows": [_line(f, s) for s in rows.get(f.id, [])]} for f in forms
            ]
            sections = [s for s in sections if s["rows"]]
            earlier = sum(open_before.get(f.id, 0) for f in forms)
            if not sections and robot != services.config.forms.notify_robot:
                continue  # the cadres' group hears about its forms only when there is news
            text = services.render(
                "form_digest",
                day=day.isoformat(),
                sections=sections,
                open_before=earlier,
                form_ids=[f.id for f in forms],
            )
            await notify.to_robots(services, session, [robot], f"forms:digest:{day}", text)
    services.wake_outbox()
    log.info("form digest sent", extra={"day": day.isoformat()})
    return True


async def _claim_day(session: AsyncSession, day: date, now: datetime) -> bool:
    stmt = (
        upsert_insert(session, FormDigest)
        .values(day=day.isoformat(), sent_at=now)
        .on_conflict_do_nothing(index_elements=["day"])
        .returning(FormDigest.day)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def _rows(session: AsyncSession, day: date) -> dict[str, list[FormSubmission]]:
    found: dict[str, list[FormSubmission]] = defaultdict(list)
    result = await session.execute(
        select(FormSubmission)
        .where(FormSubmission.day == day.isoformat())
        .order_by(FormSubmission.form_id, FormSubmission.seq)
    )
    for sub in result.scalars():
        found[sub.form_id].append(sub)
    return found


async def _open_before(session: AsyncSession, day: date) -> dict[str, int]:
    result = await session.execute(
        select(FormSubmission.form_id, func.count())
        .where(FormSubmission.day < day.isoformat(), FormSubmission.status.in_(OPEN_STATUSES))
        .group_by(FormSubmission.form_id)
    )
    return {str(row[0]): int(row[1]) for row in result}


def _robots(services: Services, registry: FormRegistry) -> dict[str, list[FormDef]]:
    robots: dict[str, list[FormDef]] = defaultdict(list)
    for form in registry.forms.values():
        for robot in notify.robots_for(services, form):
            robots[robot].append(form)
    return robots


def _line(form: FormDef, sub: FormSubmission) -> dict[str, str]:
    brief = " · ".join(
        form.field(name).display(sub.answers[name], masked=True)
        for name in form.digest
        if sub.answers.get(name) is not None
    )
    return {
        "number": sub.number,
        "brief": mask_phone(brief),
        "status": form.status_label(sub.status),
    }

"""Cases: open one for a worker, tell the cadres, relay the cadres' answers back.

Everything is in the database (cases, events, replies waiting in the inbox), and every push
goes through the outbox, so a restart in the middle of an open case loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.logs import mask_phone
from bot.messages import Incoming
from bot.outbound.outbox import Channel
from bot.services import Services
from bot.storage import repo
from bot.storage.models import AuditLog, Conversation, utcnow
from handlers.cases.calendar import WorkCalendar, load_calendar
from handlers.cases.models import ACTIVE, Case, CaseEvent, CaseStatus, WorkerInbox
from handlers.cases.roster import CATEGORY_NAMES, Roster, load_roster
from handlers.services import app_services

log = logging.getLogger(__name__)

FEATURE = "cases"
STATE_OPEN = "case:open"
STATE_RATING = "case:rating"


@dataclass(frozen=True)
class CaseDesk:
    roster: Roster
    calendar: WorkCalendar


def load_desk(content_dirs: list[Path]) -> CaseDesk:
    roster, calendar = Roster(), WorkCalendar()
    for folder in content_dirs:  # a later folder (the deployment's) wins
        if (folder / "cadres.toml").exists():
            roster = load_roster(folder / "cadres.toml")
        if (folder / "calendar.toml").exists():
            calendar = load_calendar(folder / "calendar.toml")
    return CaseDesk(roster, calendar)


def desk(services: Services) -> CaseDesk:
    return app_services(services).desk


async def _tell_cadres(
    services: Services,
    session: AsyncSession,
    dedup_key: str,
    userids: Sequence[str],
    text: str,
) -> None:
    """Queue one WeCom app message to these cadres (one send, the userids joined by |)."""
    await repo.enqueue(
        session,
        now=services.clock(),
        dedup_key=dedup_key,
        channel=Channel.WORK_APP,
        recipient="|".join(userids),
        payload={"type": "text", "text": text},
    )


async def event(
    session: AsyncSession, case_id: int, kind: str, actor: str, text: str = "", **detail: Any
) -> None:
    session.add(
        CaseEvent(
            case_id=case_id, kind=kind, actor=actor, text=text, detail=detail, created_at=utcnow()
        )
    )


# ── opening ────────────────────────────────────────────────────────────────────────────────


async def open_case(services: Services, message: Incoming, category: str, summary: str) -> Case:
    now = services.clock()
    d = desk(services)
    target = d.roster.target(category)
    case = Case(
        category=category,
        status=CaseStatus.OPEN,
        channel=message.channel,
        account=message.account,
        worker_id=message.user_id,
        conversation_key=message.conversation_key,
        summary=summary[:2000],
        created_at=now,
        escalated="",
        first_response_due=d.calendar.add_hours(now, target.first_response_hours),
        resolution_due=d.calendar.add_hours(now, target.resolution_hours),
    )
    async with services.sessions.begin() as session:
        session.add(case)
        await session.flush()
        await event(session, case.id, "opened", f"worker:{message.user_id[-6:]}", summary[:500])
        await _announce(services, session, case, "case_card", f"case:{case.id}:card")
        duty = [c.userid for c in d.roster.on_duty(category)]
        if duty:
            await _tell_cadres(
                services,
                session,
                f"case:{case.id}:duty",
                duty,
                services.render(
                    "case_duty",
                    case=case,
                    category=CATEGORY_NAMES[category],
                    summary=mask_phone(case.summary[:300]),
                ),
            )
    services.wake_outbox()
    log.info("case opened", extra={"case": case.id, "category": category})
    return case


async def _announce(
    services: Services,
    session: AsyncSession,
    case: Case,
    template: str,
    dedup_key: str,
    **values: Any,
) -> None:
    robot = services.config.cases.group_robot
    if robot not in services.config.wechat.robot.keys:
        log.warning("no robot configured for case cards", extra={"robot": robot})
        return
    text = services.render(
        template,
        case=case,
        category=CATEGORY_NAMES[case.category],
        summary=mask_phone(case.summary[:600]),
        assignee=desk(services).roster.name_of(case.assignee),
        **values,
    )
    await repo.enqueue(
        session,
        now=services.clock(),
        dedup_key=dedup_key,
        channel=Channel.ROBOT,
        recipient=robot,
        payload={"type": "markdown", "text": text},
    )


async def open_case_for(services: Services, conversation_key: str) -> Case | None:
    async with services.sessions() as session:
        return (
            await session.execute(
                select(Case)
                .where(Case.conversation_key == conversation_key, Case.status.in_(ACTIVE))
                .order_by(Case.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()


async def worker_wrote(services: Services, case: Case, message: Incoming) -> None:
    """While a case is with a cadre, what the worker writes goes into the case."""
    text = message.text or f"[{message.raw_type}]"
    async with services.sessions.begin() as session:
        await event(session, case.id, "worker_message", f"worker:{message.user_id[-6:]}", text)
        targets = (
            [case.assignee]
            if case.assignee
            else [c.userid for c in desk(services).roster.on_duty(case.category)]
        )
        if targets:
            await _tell_cadres(
                services,
                session,
                f"case:{case.id}:worker:{message.dedup_key}",
                targets,
                services.render("case_worker_wrote", case=case, text=mask_phone(text[:500])),
            )
    services.wake_outbox()


# ── the worker's conversation, changed from the cadre's side ───────────────────────────────


async def set_worker_state(
    services: Services, conversation_key: str, name: str | None, **data: Any
) -> None:
    """Move the worker's conversation on (quiet while with a cadre, asking for a rating).
    Optimistic like the pipeline: a message being handled right now sees a version conflict
    and runs again on this state."""
    for _ in range(5):
        async with services.sessions.begin() as session:
            row = await session.get(Conversation, conversation_key)
            if row is None:
                session.add(
                    Conversation(
                        key=conversation_key, state=name, data=data, version=1, updated_at=utcnow()
                    )
                )
                return
            merged = (
                {**row.data, **data}
                if name == row.state
                else {**({"inbox": True} if row.data.get("inbox") else {}), **data}
            )
            result = await session.execute(
                update(Conversation)
                .where(Conversation.key == conversation_key, Conversation.version == row.version)
                .values(state=name, data=merged, version=row.version + 1, updated_at=utcnow())
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                return
    log.error("could not update the worker's conversation", extra={"key": conversation_key})


async def flag_inbox(session: AsyncSession, conversation_key: str) -> None:
    row = await session.get(Conversation, conversation_key)
    if row is None:
        session.add(
            Conversation(
                key=conversation_key,
                state=None,
                data={"inbox": True},
                version=1,
                updated_at=utcnow(),
            )
        )
    else:
        await session.execute(
            update(Conversation)
            .where(Conversation.key == conversation_key)
            .values(
                data={**row.data, "inbox": True},
                version=Conversation.version + 1,
                updated_at=utcnow(),
            )
        )


async def take_inbox(services: Services, conversation_key: str) -> list[WorkerInbox]:
    async with services.sessions.begin() as session:
        rows = list(
            (
                await session.execute(
                    select(WorkerInbox)
                    .where(
                        WorkerInbox.conversation_key == conversation_key,
                        WorkerInbox.delivered_at.is_(None),
                    )
                    .order_by(WorkerInbox.id)
                )
            ).scalars()
        )
        now = services.clock()
        for row in rows:
            row.delivered_at = now
            if row.case_id is not None:
                await event(session, row.case_id, "reply_delivered", "bot", "", via="next_message")
    return rows


# ── the cadre's side ──────────────────────────────────────────────────────────────────────


async def audit(services: Services, actor: str, action: str, subject: str, **detail: Any) -> None:
    async with services.sessions.begin() as session:
        session.add(
            AuditLog(
                actor=actor, action=action, subject=subject, detail=detail, created_at=utcnow()
            )
        )


async def get_case(session: AsyncSession, number: int) -> Case | None:
    return await session.get(Case, number)


async def reply(services: Services, case: Case, cadre: str, text: str) -> None:
    now = services.clock()
    async with services.sessions.begin() as session:
        row = await session.get(Case, case.id)
        assert row is not None
        if row.first_response_at is None:
            row.first_response_at = now
        if row.assignee is None:
            row.assignee = cadre
            row.status = CaseStatus.CLAIMED
        number = await _next_event_number(session, case.id)
        await event(session, case.id, "cadre_reply", cadre, text)
        await _send_to_worker(
            session,
            row,
            services.render("case_reply", case=row, text=text),
            f"case:{case.id}:reply:{number}",
            now,
        )
    services.wake_outbox()


async def _next_event_number(session: AsyncSession, case_id: int) -> int:
    rows = await session.execute(select(CaseEvent.id).where(CaseEvent.case_id == case_id))
    return len(rows.all()) + 1


async def _send_to_worker(
    session: AsyncSession, case: Case, text: str, dedup_key: str, now: datetime
) -> None:
    # One outbox row: its sender pushes while WeChat allows, else parks it in the inbox.
    await repo.enqueue(
        session,
        now=now,
        dedup_key=dedup_key,
        channel=Channel.CASE_REPLY,
        recipient=case.worker_id,
        payload={
            "case_id": case.id,
            "text": text,
            "channel": case.channel,
            "conversation_key": case.conversation_key,
        },
    )


async def claim(services: Services, case: Case, cadre: str) -> None:
    async with services.sessions.begin() as session:
        row = await session.get(Case, case.id)
        assert row is not None
        row.assignee, row.status = cadre, CaseStatus.CLAIMED
        if row.first_response_at is None:
            row.first_response_at = services.clock()
        await event(session, case.id, "claimed", cadre)


async def transfer(services: Services, case: Case, cadre: str, to: str) -> None:
    async with services.sessions.begin() as session:
        row = await session.get(Case, case.id)
        assert row is not None
        row.assignee, row.status = to, CaseStatus.CLAIMED
        await event(session, case.id, "transferred", cadre, to=to)
        await _tell_cadres(
            services,
            session,
            f"case:{case.id}:transfer:{to}:{await _next_event_number(session, case.id)}",
            [to],
            services.render(
                "case_transferred",
                case=row,
                by=desk(services).roster.name_of(cadre),
                summary=mask_phone(row.summary[:300]),
            ),
        )
    services.wake_outbox()


async def close(services: Services, case: Case, cadre: str, note: str) -> None:
    async with services.sessions.begin() as session:
        row = await session.get(Case, case.id)
        assert row is not None
        row.status, row.closed_at = CaseStatus.CLOSED, services.clock()
        if row.assignee is None:
            row.assignee = cadre
        await event(session, case.id, "closed", cadre, note)
        await _send_to_worker(
            session,
            row,
            services.render("case_closed", case=row, note=note),
            f"case:{case.id}:closed",
            services.clock(),
        )
    await set_worker_state(services, case.conversation_key, STATE_RATING, case=case.id)
    services.wake_outbox()


async def hand_back(services: Services, case: Case, cadre: str) -> None:
    async with services.sessions.begin() as session:
        row = await session.get(Case, case.id)
        assert row is not None
        row.status, row.closed_at = CaseStatus.RETURNED, services.clock()
        await event(session, case.id, "returned", cadre)
        await _send_to_worker(
            session,
            row,
            services.render("case_returned", case=row),
            f"case:{case.id}:returned",
            services.clock(),
        )
    await set_worker_state(services, case.conversation_key, None)
    services.wake_outbox()


async def rate(services: Services, case_id: int, score: int, worker: str) -> None:
    async with services.sessions.begin() as session:
        row = await session.get(Case, case_id)
        if row is not None:
            row.satisfaction = score
            await event(session, case_id, "rated", worker, str(score))


async def open_cases(services: Services, assignee: str | None = None) -> list[Case]:
    async with services.sessions() as session:
        query = select(Case).where(Case.status.in_(ACTIVE)).order_by(Case.id)
        if assignee is not None:
            query = query.where((Case.assignee == assignee) | Case.assignee.is_(None))
        return list((await session.execute(query)).scalars())


async def events_of(services: Services, case_id: int) -> list[CaseEvent]:
    async with services.sessions() as session:
        return list(
            (
                await session.execute(
                    select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
                )
            ).scalars()
        )


# ── keeping promises ──────────────────────────────────────────────────────────────────────


async def check_overdue(services: Services) -> int:
    """Announce overdue cases again in the group and tell the supervisors. Each promise is
    escalated once; the state is in the database, so a restart neither repeats nor skips."""
    now = services.clock()
    d = desk(services)
    escalated = 0
    async with services.sessions.begin() as session:
        rows = (await session.execute(select(Case).where(Case.status.in_(ACTIVE)))).scalars().all()
        for case in rows:
            marks = set(filter(None, case.escalated.split(",")))
            due: list[str] = []
            if (
                case.first_response_at is None
                and case.first_response_due <= now
                and "first" not in marks
            ):
                due.append("first")
            if case.resolution_due <= now and "resolution" not in marks:
                due.append("resolution")
            for kind in due:
                marks.add(kind)
                what = "首次响应" if kind == "first" else "办结"
                await _announce(
                    services,
                    session,
                    case,
                    "case_overdue",
                    f"case:{case.id}:overdue:{kind}",
                    what=what,
                )
                if d.roster.supervisors:
                    await _tell_cadres(
                        services,
                        session,
                        f"case:{case.id}:escalate:{kind}",
                        d.roster.supervisors,
                        services.render(
                            "case_escalated",
                            case=case,
                            what=what,
                            assignee=d.roster.name_of(case.assignee),
                        ),
                    )
                await event(session, case.id, "overdue", "bot", what)
                escalated += 1
            case.escalated = ",".join(sorted(marks))
    if escalated:
        services.wake_outbox()
    return escalated


@dataclass(frozen=True)
class Stats:
    open: int
    overdue: int
    closed: int
    median_first_response_hours: float | None
    satisfaction: dict[int, int]


async def stats(services: Services, now: datetime | None = None) -> Stats:
    now = now or services.clock()
    cal = desk(services).calendar
    async with services.sessions() as session:
        rows = (await session.execute(select(Case))).scalars().all()
    open_ = [c for c in rows if c.status in ACTIVE]
    overdue = [
        c
        for c in open_
        if c.resolution_due <= now or (c.first_response_at is None and c.first_response_due <= now)
    ]
    firsts = sorted(
        cal.hours_between(c.created_at, c.first_response_at)
        for c in rows
        if c.first_response_at is not None
    )
    median = None
    if firsts:
        mid = len(firsts) // 2
        median = firsts[mid] if len(firsts) % 2 else (firsts[mid - 1] + firsts[mid]) / 2
    scores: dict[int, int] = {1: 0, 2: 0, 3: 0}
    for c in rows:
        if c.satisfaction in scores:
            scores[c.satisfaction] += 1
    return Stats(
        len(open_), len(overdue), sum(c.status == CaseStatus.CLOSED for c in rows), median, scores
    )

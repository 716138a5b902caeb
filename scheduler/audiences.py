"""Who a broadcast goes to: groups (robots, app chats) and workers (subscribers of a topic,
members, today's birthdays, those who have not answered a survey), as outbox recipients.

The order is stable (groups, then workers by id), so expanding a run again after a crash
paces the same recipients the same way.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, tzinfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.outbound.outbox import Channel
from bot.storage.models import User
from scheduler import surveys
from scheduler.definitions import Broadcast
from scheduler.models import BroadcastRun, Delivery, Subscription

# Outbox channels of broadcasts (their senders are in scheduler/senders.py).
ROBOT, APPCHAT, WORK, MP = (
    Channel.ROBOT,
    Channel.BCAST_APPCHAT,
    Channel.BCAST_WORK,
    Channel.BCAST_MP,
)
GROUP_CHANNELS = frozenset({ROBOT, APPCHAT})
# How a worker who wrote on each inbound channel is reached; dev and aibot users cannot be.
PUSH = {"work": WORK, "mp": MP}
ONLY = {"work_app": "work", "mp_cs": "mp"}
# The Official Account takes customer-service messages only this long after the worker wrote.
MP_WINDOW = timedelta(hours=48)
OUTSIDE_WINDOW = "outside the 48-hour window"
NO_ROBOT = "no such robot in wechat.robot.keys"


@dataclass(frozen=True, slots=True)
class Recipient:
    channel: str  # outbox channel
    recipient: str  # robot name, chat id, WeCom userid or openid
    user_id: int | None = None
    name: str = ""
    note: str | None = None  # why it is not sent

    @property
    def is_group(self) -> bool:
        return self.channel in GROUP_CHANNELS


@dataclass(frozen=True)
class Expanded:
    recipients: list[Recipient]
    survey: surveys.SurveyStats | None = None  # for a reminder: how the prompt is answered
    prompt_run: int | None = None


async def expand(
    session: AsyncSession,
    broadcast: Broadcast,
    scheduled_at: datetime,
    now: datetime,
    tz: tzinfo,
    robot_keys: Collection[str] = (),
) -> Expanded:
    """``robot_keys``: the configured robot names; a push to another is recorded, not sent
    (a fresh set-up without robots still runs its schedule quietly)."""
    audience = broadcast.audience
    groups = [Recipient(ROBOT, name, name=name) for name in audience.robots]
    groups += [Recipient(APPCHAT, chat, name=chat) for chat in audience.appchats]
    user_ids: set[int] = set()
    stats: surveys.SurveyStats | None = None
    prompt_id: int | None = None
    if audience.topic:
        user_ids |= await _subscribers(session, audience.topic)
    if audience.members:
        user_ids |= await _ids(session, select(User.id).where(User.member_status == "member"))
    if audience.birthday:
        user_ids |= await birthday_members(session, scheduled_at.astimezone(tz).date())
    if audience.non_respondents:
        prompt = await latest_run(session, audience.non_respondents, scheduled_at)
        if prompt is not None:
            prompt_id = prompt.id
            stats = await surveys.survey_stats(session, prompt)
            # A group cannot be reminded in part: it gets the reminder again.
            groups += await _group_recipients(session, prompt.id)
            user_ids |= set(await surveys.audience_users(session, prompt.id)) - (
                await surveys.respondents(session, prompt)
            )
    topic = broadcast.topic_of_push
    if topic and user_ids:
        user_ids -= await _unsubscribed(session, topic)
    workers = await _workers(session, broadcast, sorted(user_ids), now)
    groups = [
        replace(g, note=NO_ROBOT) if g.channel == ROBOT and g.recipient not in robot_keys else g
        for g in groups
    ]
    return Expanded(_unique([*groups, *workers]), stats, prompt_id)


async def birthday_members(session: AsyncSession, day: date) -> set[int]:
    """Members born on ``day``'s month and day; 29 February birthdays are kept on the 28th
    in the years without one."""
    days = [f"{day:%m-%d}"]
    if day.month == 2 and day.day == 28 and not _leap(day.year):
        days.append("02-29")
    query = select(User.id).where(
        User.member_status == "member", func.substr(User.birthday, 6, 5).in_(days)
    )
    return await _ids(session, query)


async def latest_run(
    session: AsyncSession, broadcast_id: str, before: datetime
) -> BroadcastRun | None:
    """The survey run a reminder is about: the latest that was sent, up to ``before``."""
    return (
        await session.execute(
            select(BroadcastRun)
            .where(
                BroadcastRun.broadcast_id == broadcast_id,
                BroadcastRun.scheduled_at <= before,
                BroadcastRun.status.in_(("sending", "done")),
            )
            .order_by(BroadcastRun.scheduled_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def count_users(
    session: AsyncSession,
    broadcast: Broadcast,
    scheduled_at: datetime,
    tz: tzinfo,
    robot_keys: Collection[str] = (),
) -> int:
    """How many workers the audience names right now (for a preview)."""
    expanded = await expand(session, broadcast, scheduled_at, scheduled_at, tz, robot_keys)
    return sum(1 for r in expanded.recipients if not r.is_group)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


async def _ids(session: AsyncSession, query: object) -> set[int]:
    return set((await session.execute(query)).scalars())  # type: ignore[call-overload]


async def _subscribers(session: AsyncSession, topic: str) -> set[int]:
    return await _ids(
        session,
        select(Subscription.user_id).where(
            Subscription.topic == topic, Subscription.subscribed.is_(True)
        ),
    )


async def _unsubscribed(session: AsyncSession, topic: str) -> set[int]:
    return await _ids(
        session,
        select(Subscription.user_id).where(
            Subscription.topic == topic, Subscription.subscribed.is_(False)
        ),
    )


async def _group_recipients(session: AsyncSession, run_id: int) -> list[Recipient]:
    rows = await session.execute(
        select(Delivery.channel, Delivery.recipient)
        .where(Delivery.run_id == run_id, Delivery.user_id.is_(None))
        .order_by(Delivery.id)
    )
    return [Recipient(r.channel, r.recipient, name=r.recipient) for r in rows]


async def _workers(
    session: AsyncSession, broadcast: Broadcast, user_ids: list[int], now: datetime
) -> list[Recipient]:
    found: list[Recipient] = []
    phones: dict[str, int] = {}  # phone → index in ``found``
    for start in range(0, len(user_ids), 5000):  # bounded IN lists
        rows = await session.execute(
            select(
                User.id, User.channel, User.external_id, User.name, User.phone, User.last_seen_at
            )
            .where(User.id.in_(user_ids[start : start + 5000]))
            .order_by(User.id)
        )
        for row in rows:
            channel = _push_channel(broadcast, row.channel)
            if channel is None:
                continue
            note = None
            if channel == MP and now - row.last_seen_at > MP_WINDOW:
                note = OUTSIDE_WINDOW  # WeChat would answer 45015: do not spend the quota
            recipient = Recipient(channel, row.external_id, row.id, row.name or "", note)
            # One person on both WeCom and the Official Account (the same phone in the
            # roster) gets one message: the reachable one, WeCom first.
            if row.phone and row.phone in phones:
                index = phones[row.phone]
                if _preference(recipient) < _preference(found[index]):
                    found[index] = recipient
                continue
            if row.phone:
                phones[row.phone] = len(found)
            found.append(recipient)
    return found


def _preference(recipient: Recipient) -> tuple[bool, bool]:
    return (recipient.note is not None, recipient.channel != WORK)


def _push_channel(broadcast: Broadcast, user_channel: str) -> str | None:
    if broadcast.channel != "auto" and ONLY[broadcast.channel] != user_channel:
        return None
    return PUSH.get(user_channel)


def _unique(recipients: Iterable[Recipient]) -> list[Recipient]:
    seen: set[tuple[str, str]] = set()
    out: list[Recipient] = []
    for r in recipients:
        if (r.channel, r.recipient) not in seen:
            seen.add((r.channel, r.recipient))
            out.append(r)
    return out

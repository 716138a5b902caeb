"""When a broadcast fires: APScheduler 3 triggers built from a definition, and the list of
firings between two instants, so missed firings are found from the database after a restart
rather than from APScheduler's memory (its default misfire grace is one second)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from scheduler.cron import cron_trigger_fields
from scheduler.definitions import QuietHours, Schedule

# crontab numbers the week from Sunday (0, and 7 again); APScheduler 3 from Monday. Names
# mean the same to both, so a crontab weekday field is rewritten as names.
# Intervals count from here unless a start is given: "every 1d" fires at local midnight and
# "every 7d" on Mondays, the same instants before and after a restart.
INTERVAL_ORIGIN = datetime(2000, 1, 3)
_TICK = timedelta(microseconds=1)


def build_trigger(schedule: Schedule, tz: tzinfo) -> Any:
    if schedule.cron is not None:
        return CronTrigger(timezone=tz, **cron_trigger_fields(schedule.cron))
    if schedule.at is not None:
        return DateTrigger(run_date=schedule.at.replace(tzinfo=tz), timezone=tz)
    assert schedule.every is not None
    start = (schedule.start or INTERVAL_ORIGIN).replace(tzinfo=tz)
    return IntervalTrigger(seconds=schedule.every, start_date=start, timezone=tz)


def fire_times(trigger: Any, after: datetime, until: datetime, limit: int = 5000) -> list[datetime]:
    """The firings ``t`` with ``after < t <= until``, oldest first, in UTC; the latest
    ``limit`` of them when there are more."""
    found: list[datetime] = []
    cursor = after + _TICK
    while True:
        moment = trigger.get_next_fire_time(None, cursor)
        # A one-off trigger answers its time whatever ``now`` is: stop once it is behind.
        if moment is None or moment < cursor or moment > until:
            return found
        found.append(moment.astimezone(UTC))
        if len(found) > limit:
            del found[0]
        cursor = moment + _TICK


def next_fire(trigger: Any, after: datetime) -> datetime | None:
    moment = trigger.get_next_fire_time(None, after + _TICK)
    if moment is None or moment <= after:
        return None
    return moment.astimezone(UTC)  # type: ignore[no-any-return]


def upcoming(trigger: Any, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` firings after ``after``."""
    found: list[datetime] = []
    moment = next_fire(trigger, after)
    while moment is not None and len(found) < count:
        found.append(moment)
        moment = next_fire(trigger, moment)
    return found


def after_quiet_hours(moment: datetime, quiet: QuietHours | None, tz: tzinfo) -> datetime:
    """``moment``, or the end of the quiet hours it falls in."""
    if quiet is None:
        return moment
    local = moment.astimezone(tz)
    now, start, end = local.time(), quiet.start, quiet.end
    inside = start <= now < end if start < end else (now >= start or now < end)
    if not inside:
        return moment
    release = datetime.combine(local.date(), end, tzinfo=tz)
    if release <= local:
        release += timedelta(days=1)
    return release.astimezone(UTC)

"""Crontab rules as the broadcast definitions write them, read into APScheduler's fields."""

from __future__ import annotations

from datetime import UTC

from apscheduler.triggers.cron import CronTrigger

DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _day(token: str) -> int:
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token)
    if token[:3] in DAYS:
        return DAYS.index(token[:3])
    raise ValueError(f"unknown weekday {token!r} (0-7 with 0 = Sunday, or mon … sun)")


def cron_trigger_fields(expr: str) -> dict[str, str]:
    """The CronTrigger arguments for a standard five-field crontab rule."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError("expected five fields: minute hour day-of-month month day-of-week")
    minute, hour, day, month, weekday = fields
    values = {
        "minute": minute,
        "hour": hour,
        "day": day,
        "month": month,
        "day_of_week": _weekdays(weekday),
    }
    CronTrigger(**values, timezone=UTC)  # raises ValueError on a wrong field
    return values


def _weekdays(field: str) -> str:
    if field == "*":
        return "*"
    days: set[int] = set()
    for part in field.lower().split(","):
        span, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
        except ValueError:
            raise ValueError(f"wrong weekday step in {part!r}") from None
        if span == "*":
            low, high = 0, 6
        elif "-" in span:
            first, _, last = span.partition("-")
            low, high = _day(first), _day(last)
        else:
            low = _day(span)
            high = 7 if step_text else low  # "1/2": from Monday, every other day
        if low > high or step < 1:
            raise ValueError(f"wrong weekday range {part!r}")
        days.update(d % 7 for d in range(low, high + 1, step))
    return ",".join(DAYS[d] for d in sorted(days))

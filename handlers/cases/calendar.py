"""Working hours on China's calendar: weekends, statutory holidays and the 调休 weekends that
are working days come from chinese-calendar (it follows the State Council's yearly notice);
a deployment can add its own days off or working days in content/calendar.toml. Promises to
workers are counted in these hours."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar

CHINA = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class WorkCalendar:
    start: time = time(9, 0)
    end: time = time(17, 30)
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)  # 调休: weekend days worked

    def is_workday(self, day: date) -> bool:
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:  # a year the library has no notice for yet
            return day.weekday() < 5

    def add_hours(self, start: datetime, hours: float) -> datetime:
        """The moment ``hours`` working hours after ``start`` (aware datetimes)."""
        remaining = timedelta(hours=hours)
        now = start.astimezone(CHINA)
        for _ in range(3660):  # ten years of days: a bound, not a limit anyone reaches
            day = now.date()
            if self.is_workday(day):
                opens = datetime.combine(day, self.start, CHINA)
                closes = datetime.combine(day, self.end, CHINA)
                begin = max(now, opens)
                if begin < closes:
                    available = closes - begin
                    if remaining <= available:
                        return begin + remaining
                    remaining -= available
            now = datetime.combine(day + timedelta(days=1), time(0), CHINA)
        raise ValueError("calendar has no working hours")

    def hours_between(self, start: datetime, end: datetime) -> float:
        """Working hours from ``start`` to ``end``."""
        total = timedelta()
        now = start.astimezone(CHINA)
        end = end.astimezone(CHINA)
        while now < end:
            day = now.date()
            if self.is_workday(day):
                opens = datetime.combine(day, self.start, CHINA)
                closes = datetime.combine(day, self.end, CHINA)
                a, b = max(now, opens), min(end, closes)
                if a < b:
                    total += b - a
            now = datetime.combine(day + timedelta(days=1), time(0), CHINA)
        return total.total_seconds() / 3600


def load_calendar(path: Path) -> WorkCalendar:
    if not path.exists():
        return WorkCalendar()
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    return WorkCalendar(
        start=time.fromisoformat(raw.get("workday_start", "09:00")),
        end=time.fromisoformat(raw.get("workday_end", "17:30")),
        holidays=frozenset(date.fromisoformat(d) for d in raw.get("holidays", [])),
        workdays=frozenset(date.fromisoformat(d) for d in raw.get("workdays", [])),
    )

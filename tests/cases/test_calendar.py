"""Working hours across weekends, statutory holidays and 调休 working weekends."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from handlers.cases.calendar import CHINA, load_calendar

CALENDAR = load_calendar(Path(__file__).resolve().parents[2] / "content" / "calendar.toml")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CHINA)


def test_within_one_day() -> None:
    assert CALENDAR.add_hours(at("2026-11-23 10:00"), 4) == at("2026-11-23 14:00")


def test_friday_afternoon_runs_into_monday() -> None:
    # Friday 16:00 + 4 h: 1.5 h on Friday, 2.5 h on Monday from 09:00.
    assert CALENDAR.add_hours(at("2026-11-20 16:00"), 4) == at("2026-11-23 11:30")


def test_mid_autumn_holiday_is_skipped() -> None:
    # Thursday 2026-09-24 16:00; Fri 25 – Sun 27 are the 中秋 holiday.
    assert CALENDAR.add_hours(at("2026-09-24 16:00"), 4) == at("2026-09-28 11:30")


def test_tiaoxiu_saturday_is_a_working_day() -> None:
    # Saturday 2026-10-10 is worked (调休) after the National Day week.
    assert CALENDAR.add_hours(at("2026-10-09 17:00"), 1) == at("2026-10-10 09:30")


def test_night_time_waits_for_the_morning() -> None:
    assert CALENDAR.add_hours(at("2026-11-24 22:00"), 1) == at("2026-11-25 10:00")


def test_hours_between_counts_only_working_time() -> None:
    assert CALENDAR.hours_between(at("2026-11-20 16:00"), at("2026-11-23 11:30")) == 4.0

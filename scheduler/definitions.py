"""Broadcast definitions: ``[[broadcast]]`` tables in ``<content>/broadcasts/*.toml``, or added
with ``unionbot broadcasts add`` (kept in the database in the same shape).

Everything is checked at load time, so a typo stops start-up with the file and key named
instead of failing at 08:00 in front of the whole group.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from bot.errors import ContentError

USER_CHANNELS = ("auto", "work_app", "mp_cs")
FORMATS = ("text", "markdown")
_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_EVERY = re.compile(r"(\d+)\s*(s|m|h|d)")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_KEYS = {
    "id",
    "title",
    "enabled",
    "schedule",
    "template",
    "text",
    "format",
    "channel",
    "audience",
    "topic",
    "quiet_hours",
    "form",
    "event",
}
_AUDIENCE_KEYS = {"robots", "appchats", "topic", "members", "birthday", "non_respondents"}
_SCHEDULE_KEYS = {"cron", "at", "every", "start"}


class DefinitionError(ContentError):
    """A broadcast definition is wrong; the message names the file (or source) and key.
    A ContentError, so ``unionbot`` reports it the way it reports the knowledge base's."""

    def __init__(self, message: str) -> None:
        ValueError.__init__(self, message)
        self.path = Path(message.partition(":")[0])
        self.entry_id = None


Fail = Callable[[str, str], DefinitionError]  # (key, what is wrong) → the error to raise


@dataclass(frozen=True)
class Schedule:
    """Exactly one of: a five-field crontab rule, a one-off local time, or an interval in
    seconds (counted from ``start``, so the firings stay put across restarts)."""

    cron: str | None = None
    at: datetime | None = None  # naive: local time in the configured time zone
    every: int | None = None
    start: datetime | None = None  # naive, local

    def describe(self) -> str:
        if self.cron is not None:
            return f"cron {self.cron}"
        if self.at is not None:
            return f"once at {self.at:%Y-%m-%d %H:%M}"
        return f"every {_seconds_text(self.every or 0)}"


@dataclass(frozen=True)
class Audience:
    robots: tuple[str, ...] = ()  # group robot names from [wechat.robot.keys]
    appchats: tuple[str, ...] = ()  # WeCom app group chat ids
    topic: str | None = None  # subscribers of this topic
    members: bool = False  # every member in the roster
    birthday: bool = False  # members whose birthday is the day of the firing
    non_respondents: str | None = None  # who has not answered the latest run of this survey

    def describe(self) -> str:
        parts = [f"群机器人 {'、'.join(self.robots)}"] if self.robots else []
        if self.appchats:
            parts.append(f"群聊 {'、'.join(self.appchats)}")
        if self.topic:
            parts.append(f"订阅「{self.topic}」的职工")
        if self.members:
            parts.append("全体会员")
        if self.birthday:
            parts.append("当天生日的会员")
        if self.non_respondents:
            parts.append(f"{self.non_respondents} 的未答复者")
        return "；".join(parts)

    @property
    def has_users(self) -> bool:
        return bool(self.topic or self.members or self.birthday or self.non_respondents)


@dataclass(frozen=True)
class QuietHours:
    """Pushes falling between ``start`` and ``end`` (local time) wait until ``end``."""

    start: time
    end: time

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class Broadcast:
    id: str
    title: str
    schedule: Schedule
    audience: Audience
    template: str | None = None  # a template name under templates/replies
    text: str | None = None  # or the Jinja2 source itself
    format: str = "text"
    channel: str = "auto"  # how workers are reached: their own channel, or only this one
    topic: str | None = None  # what the push is about: who unsubscribed it is left out
    quiet_hours: QuietHours | None = None
    form: str | None = None  # a survey prompt: the form workers answer
    event: Mapping[str, str] = field(default_factory=dict)
    enabled: bool = True
    source: str = ""  # the file, or "database" for one added from the command line

    @property
    def topic_of_push(self) -> str | None:
        return self.topic or self.audience.topic


def load_definitions(content_dirs: Sequence[Path]) -> dict[str, Broadcast]:
    """Every ``[[broadcast]]`` of every content folder; a later folder replaces an earlier
    folder's broadcast of the same id (a deployment's own copy overrides the shipped one)."""
    found: dict[str, Broadcast] = {}
    for folder in content_dirs:
        for file in sorted((folder / "broadcasts").glob("*.toml")):
            try:
                raw = tomllib.loads(file.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise DefinitionError(f"{file}: cannot read: {exc}") from None
            unknown = set(raw) - {"broadcast"}
            if unknown:
                raise DefinitionError(f"{file}: unknown key {sorted(unknown)[0]!r}")
            tables = raw.get("broadcast", [])
            if not isinstance(tables, list):
                raise DefinitionError(f"{file}: write each broadcast as a [[broadcast]] table")
            here: set[str] = set()
            for n, table in enumerate(tables, 1):
                item = parse_broadcast(table, f"{file} broadcast #{n}")
                if item.id in here:
                    raise DefinitionError(f"{file}: broadcast id {item.id!r} appears twice")
                here.add(item.id)
                found[item.id] = item
    return found


def parse_broadcast(raw: Any, source: str) -> Broadcast:
    """Check one definition (a TOML table, or the JSON the CLI stored)."""

    def fail(key: str, what: str) -> DefinitionError:
        return DefinitionError(f"{source}: {key}: {what}")

    if not isinstance(raw, Mapping):
        raise DefinitionError(f"{source}: must be a table")
    unknown = set(raw) - _KEYS
    if unknown:
        raise fail(sorted(unknown)[0], "unknown key")
    ident = _text(raw, "id", fail, required=True)
    assert ident is not None
    if not _ID.fullmatch(ident):
        raise fail("id", "use lower-case letters, digits, - and _ (at most 64)")
    source = f"{source} ({ident})"
    text, template = _text(raw, "text", fail), _text(raw, "template", fail)
    if (text is None) == (template is None):
        raise fail("template", "give exactly one of template (a file name) or text")
    fmt = _text(raw, "format", fail) or "text"
    if fmt not in FORMATS:
        raise fail("format", f"must be one of {', '.join(FORMATS)}")
    channel = _text(raw, "channel", fail) or "auto"
    if channel not in USER_CHANNELS:
        raise fail("channel", f"must be one of {', '.join(USER_CHANNELS)}")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise fail("enabled", "must be true or false")
    event = raw.get("event", {})
    if not isinstance(event, Mapping) or not all(isinstance(v, str) for v in event.values()):
        raise fail("event", "must be a table of texts")
    audience = _audience(raw.get("audience"), fail)
    quiet = _text(raw, "quiet_hours", fail)
    return Broadcast(
        id=ident,
        title=_text(raw, "title", fail) or ident,
        schedule=_schedule(raw.get("schedule"), fail),
        audience=audience,
        template=template,
        text=text,
        format=fmt,
        channel=channel,
        topic=_text(raw, "topic", fail),
        quiet_hours=None if quiet is None else parse_quiet_hours(quiet, fail),
        form=_text(raw, "form", fail),
        event=dict(event),
        enabled=enabled,
        source=source,
    )


def parse_quiet_hours(value: str, fail: Fail | None = None) -> QuietHours:
    start, _, end = value.partition("-")
    a, b = _HHMM.fullmatch(start.strip()), _HHMM.fullmatch(end.strip())
    if a is None or b is None or start.strip() == end.strip():
        message = f"expected HH:MM-HH:MM such as 21:30-08:00, got {value!r}"
        raise fail("quiet_hours", message) if fail else DefinitionError(message)
    return QuietHours(time(int(a[1]), int(a[2])), time(int(b[1]), int(b[2])))


def parse_every(value: str) -> int | None:
    """``90m``, ``2h``, ``1d``, ``1h30m`` → seconds; None when it is not such a text."""
    text = value.replace(" ", "")
    parts = _EVERY.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(int(n) * _UNITS[u] for n, u in parts)


def _seconds_text(seconds: int) -> str:
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out += f"{seconds // size}{unit}"
            seconds %= size
    return out or "0s"


def _text(raw: Mapping[str, Any], key: str, fail: Fail, required: bool = False) -> str | None:
    value = raw.get(key)
    if value is None:
        if required:
            raise fail(key, "is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise fail(key, "must be a non-empty text")
    return value.strip() if key != "text" else value


def _names(value: Any, key: str, fail: Fail) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise fail(key, "must be a list of names")
    return tuple(value)


def _audience(raw: Any, fail: Fail) -> Audience:
    if not isinstance(raw, Mapping):
        raise fail("audience", 'is required: a table such as { robots = ["group"] }')
    unknown = set(raw) - _AUDIENCE_KEYS
    if unknown:
        raise fail(f"audience.{sorted(unknown)[0]}", "unknown key")
    for flag in ("members", "birthday"):
        if not isinstance(raw.get(flag, False), bool):
            raise fail(f"audience.{flag}", "must be true or false")
    audience = Audience(
        robots=_names(raw.get("robots"), "audience.robots", fail),
        appchats=_names(raw.get("appchats"), "audience.appchats", fail),
        topic=_text(raw, "topic", lambda k, w: fail(f"audience.{k}", w)),
        members=bool(raw.get("members", False)),
        birthday=bool(raw.get("birthday", False)),
        non_respondents=_text(raw, "non_respondents", lambda k, w: fail(f"audience.{k}", w)),
    )
    if not (audience.robots or audience.appchats or audience.has_users):
        raise fail("audience", "names nobody")
    return audience


def _local_datetime(value: Any, key: str, fail: Fail) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise fail(key, "give the local time without an offset (the configured time zone)")
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace(" ", "T"))
        except ValueError:
            raise fail(key, f"expected a time such as 2026-07-01T09:00, got {value!r}") from None
        if parsed.tzinfo is not None:
            raise fail(key, "give the local time without an offset (the configured time zone)")
        return parsed
    raise fail(key, "expected a time such as 2026-07-01T09:00")


def _schedule(raw: Any, fail: Fail) -> Schedule:
    if not isinstance(raw, Mapping):
        raise fail(
            "schedule", 'is required: { cron = "0 8 * * *" }, { at = ... } or { every = ... }'
        )
    unknown = set(raw) - _SCHEDULE_KEYS
    if unknown:
        raise fail(f"schedule.{sorted(unknown)[0]}", "unknown key")
    given = [k for k in ("cron", "at", "every") if k in raw]
    if len(given) != 1:
        raise fail("schedule", "give exactly one of cron, at or every")
    kind = given[0]
    if "start" in raw and kind != "every":
        raise fail("schedule.start", "only goes with every")
    if kind == "cron":
        cron = raw["cron"]
        if not isinstance(cron, str):
            raise fail("schedule.cron", 'must be a text such as "0 8 * * *"')
        from scheduler.cron import cron_trigger_fields

        try:
            cron_trigger_fields(cron)
        except ValueError as exc:
            raise fail("schedule.cron", str(exc)) from None
        return Schedule(cron=" ".join(cron.split()))
    if kind == "at":
        return Schedule(at=_local_datetime(raw["at"], "schedule.at", fail))
    every = parse_every(raw["every"]) if isinstance(raw["every"], str) else None
    if not every or every < 60:
        raise fail("schedule.every", "expected at least a minute, such as 30m, 2h or 1d")
    start = raw.get("start")
    return Schedule(
        every=every,
        start=None if start is None else _local_datetime(start, "schedule.start", fail),
    )


def check_topics(broadcasts: Iterable[Broadcast], topics: Sequence[str]) -> None:
    """A topic nobody can subscribe to is a typo: say so before anything is sent."""
    for item in broadcasts:
        for topic in (item.topic, item.audience.topic):
            if topic is not None and topic not in topics:
                raise DefinitionError(
                    f"{item.source}: topic {topic!r} is not in broadcasts.topics "
                    f"({', '.join(topics)})"
                )

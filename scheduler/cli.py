"""``unionbot broadcasts …`` and ``unionbot members import``.

These commands work on the database directly, with or without a running service: a run
started here is queued in the outbox and the service's outbox worker sends it; pause and
resume are read by every instance at its next firing.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.config import Config
from bot.services import open_core_services
from bot.storage.models import User
from scheduler import audiences, roster, runs, surveys
from scheduler.definitions import Broadcast, DefinitionError, parse_broadcast
from scheduler.engine import BroadcastEngine, UnknownBroadcast
from scheduler.models import BroadcastRun, BroadcastState
from scheduler.schedules import after_quiet_hours, build_trigger, next_fire, upcoming
from scheduler.setup import build_engine


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    bc = sub.add_parser("broadcasts", help="scheduled pushes").add_subparsers(
        title="broadcasts commands"
    )
    listing = bc.add_parser("list", parents=[common], help="every broadcast and its next firing")
    listing.set_defaults(run=cmd_list)
    preview = bc.add_parser("preview", parents=[common], help="the text, audience and schedule")
    preview.add_argument("id")
    preview.add_argument("--at", help="render for this time (YYYY-MM-DD HH:MM, Beijing time)")
    preview.add_argument("--name", default="张师傅", help="the recipient's name in the sample")
    preview.set_defaults(run=cmd_preview)
    run_now = bc.add_parser("run-now", parents=[common], help="push now, whatever the schedule")
    run_now.add_argument("id")
    run_now.add_argument(
        "--wait", action="store_true", help="wait until the service has sent everything"
    )
    run_now.set_defaults(run=cmd_run_now)
    for name, paused, text in (
        ("pause", True, "stop the firings (every instance) until resumed"),
        ("resume", False, "fire again as scheduled"),
    ):
        cmd = bc.add_parser(name, parents=[common], help=text)
        cmd.add_argument("id")
        cmd.set_defaults(run=_pause_command(paused))
    runs_cmd = bc.add_parser("runs", parents=[common], help="recent runs: delivered, answered")
    runs_cmd.add_argument("id")
    runs_cmd.add_argument("--limit", type=int, default=10)
    runs_cmd.set_defaults(run=cmd_runs)
    add = bc.add_parser("add", parents=[common], help="add a broadcast (kept in the database)")
    _add_definition_arguments(add)
    add.set_defaults(run=cmd_add)
    remove = bc.add_parser("remove", parents=[common], help="remove a broadcast added here")
    remove.add_argument("id")
    remove.set_defaults(run=cmd_remove)

    members = sub.add_parser("members", help="the members' roster").add_subparsers(
        title="members commands"
    )
    imp = members.add_parser(
        "import", parents=[common], help="import name, phone, birthday, openid/userid from CSV"
    )
    imp.add_argument("file", type=Path)
    imp.set_defaults(run=cmd_members_import)


def _add_definition_arguments(add: argparse.ArgumentParser) -> None:
    add.add_argument("--id", required=True)
    add.add_argument("--title")
    when = add.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", help='crontab rule in Beijing time, e.g. "0 8 * * *"')
    when.add_argument("--at", help="once, e.g. 2026-07-01T09:00 (Beijing time)")
    when.add_argument("--every", help="an interval such as 30m, 2h, 1d")
    what = add.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help="the Jinja2 text, e.g. '{{ date }} 活动通知'")
    what.add_argument("--template", help="a template name under templates/replies")
    add.add_argument("--robot", action="append", default=[], help="group robot name (repeat)")
    add.add_argument("--appchat", action="append", default=[], help="app group chat id (repeat)")
    add.add_argument("--subscribers", metavar="TOPIC", help="the subscribers of a topic")
    add.add_argument("--members", action="store_true", help="every member")
    add.add_argument("--birthday", action="store_true", help="members born on the day")
    add.add_argument("--non-respondents", metavar="SURVEY", help="who has not answered SURVEY")
    add.add_argument("--topic", help="what the push is about (unsubscribers are left out)")
    add.add_argument("--channel", choices=["auto", "work_app", "mp_cs"], default="auto")
    add.add_argument("--format", choices=["text", "markdown"], default="text")
    add.add_argument("--quiet-hours", help="e.g. 21:30-08:00")
    add.add_argument("--form", help="a survey prompt: the form it asks for")
    add.add_argument("--event", action="append", default=[], help="KEY=VALUE for the template")
    add.add_argument("--disabled", action="store_true", help="add it switched off")


# ── plumbing ──────────────────────────────────────────────────────────────────────────────


@asynccontextmanager
async def open_engine(config: Config) -> AsyncIterator[BroadcastEngine]:
    """The engine on the configured database, without APScheduler or an outbox worker."""
    async with open_core_services(config) as services:
        engine = build_engine(services)
        await engine.refresh()
        yield engine


Body = Callable[[BroadcastEngine], Coroutine[Any, Any, int]]


def _run(config: Config, body: Body) -> int:
    async def main() -> int:
        async with open_engine(config) as engine:
            try:
                return await body(engine)
            except UnknownBroadcast as exc:
                known = ", ".join(sorted(engine.definitions)) or "none"
                print(f"unionbot: no broadcast {exc.args[0]!r} (known: {known})", file=sys.stderr)
                return 1

    return asyncio.run(main())


def _local(engine: BroadcastEngine, moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return "-" if moment is None else moment.astimezone(engine.tz).strftime(fmt)


# ── commands ──────────────────────────────────────────────────────────────────────────────


def cmd_list(args: argparse.Namespace, config: Config) -> int:
    async def body(engine: BroadcastEngine) -> int:
        now = engine.clock()
        async with engine.sessions() as session:
            states = await runs.states(session)
            last = await runs.last_runs(session)
            seen = await runs.last_heartbeat(session)
        print(f"{'id':<26} {'next firing':<17} {'state':<9} {'last run':<26} schedule / audience")
        for item in sorted(engine.definitions.values(), key=lambda b: b.id):
            state = states.get(item.id)
            status = (
                "disabled"
                if not item.enabled
                else "paused"
                if state is not None and state.paused
                else "on"
            )
            upcoming = next_fire(engine.triggers[item.id], now) if item.enabled else None
            run = last.get(item.id)
            last_text = "-" if run is None else f"{_local(engine, run.scheduled_at)} {run.status}"
            print(
                f"{item.id:<26} {_local(engine, upcoming):<17} {status:<9} {last_text:<26} "
                f"{item.schedule.describe()} → {item.audience.describe()}"
            )
        print(f"\nscheduler last seen: {_local(engine, seen, '%Y-%m-%d %H:%M:%S')} (Beijing time)")
        return 0

    return _run(config, body)


def cmd_preview(args: argparse.Namespace, config: Config) -> int:
    async def body(engine: BroadcastEngine) -> int:
        item = engine.get(args.id)
        now = engine.clock()
        if args.at:
            at = datetime.fromisoformat(args.at.replace(" ", "T")).replace(tzinfo=engine.tz)
        else:
            at = next_fire(engine.triggers[item.id], now) or now
        coming = upcoming(engine.triggers[item.id], now, 3)
        async with engine.sessions() as session:
            workers = await audiences.count_users(
                session, item, at, engine.tz, engine.services.config.wechat.robot.keys
            )
        print(f"{item.id} · {item.title}{'' if item.enabled else ' (disabled)'}")
        print(f"  schedule:  {item.schedule.describe()} (Beijing time)")
        print(f"  next:      {', '.join(_local(engine, t) for t in coming) or '-'}")
        print(f"  audience:  {item.audience.describe()} (workers now: {workers})")
        if item.topic_of_push:
            print(f"  topic:     {item.topic_of_push} (who unsubscribed is left out)")
        if item.quiet_hours:
            print(f"  quiet:     {item.quiet_hours}")
        if item.form:
            print(f"  survey of: form {item.form}")
        print(f"  source:    {item.source}")
        print(f"\n--- as sent at {_local(engine, at)} ---")
        print(engine.sample_text(item.id, at, args.name))
        return 0

    return _run(config, body)


def cmd_run_now(args: argparse.Namespace, config: Config) -> int:
    async def body(engine: BroadcastEngine) -> int:
        run_id = await engine.run_now(args.id)
        async with engine.sessions() as session:
            run = await session.get(BroadcastRun, run_id)
            assert run is not None
            stats = await runs.run_stats(session, run)
        print(f"run #{run_id}: {run.recipients} recipients, {_counts(stats)}")
        item = engine.get(args.id)
        now = engine.clock()
        start = after_quiet_hours(now, item.quiet_hours, engine.tz)
        if start > now:
            print(f"quiet hours ({item.quiet_hours}): sent from {_local(engine, start)}")
        if not args.wait:
            print("queued: the running service sends them (unionbot broadcasts runs to follow)")
            return 0
        return await _wait(engine, run_id)

    return _run(config, body)


async def _wait(engine: BroadcastEngine, run_id: int) -> int:
    still = -1
    idle = 0.0
    while True:
        async with engine.sessions() as session:
            run = await session.get(BroadcastRun, run_id)
            assert run is not None
            stats = await runs.run_stats(session, run)
        waiting = stats.count("pending") + stats.count("sending")
        if waiting == 0:
            async with engine.sessions.begin() as session:
                await runs.close_finished(session, engine.clock())
            print(f"done: {_counts(stats)}")
            return 0 if stats.count("failed") == 0 else 1
        idle = 0.0 if waiting != still else idle + 1.0
        if idle == 30:
            print("nothing sent for 30 s: is the service (unionbot serve) running?")
        still = waiting
        await asyncio.sleep(1.0)


def _pause_command(paused: bool) -> Callable[[argparse.Namespace, Config], int]:
    def cmd(args: argparse.Namespace, config: Config) -> int:
        async def body(engine: BroadcastEngine) -> int:
            engine.get(args.id)
            async with engine.sessions.begin() as session:
                await runs.set_paused(session, args.id, paused, _actor(), engine.clock())
            print(f"{args.id}: {'paused' if paused else 'resumed'}")
            return 0

        return _run(config, body)

    return cmd


def cmd_runs(args: argparse.Namespace, config: Config) -> int:
    async def body(engine: BroadcastEngine) -> int:
        async with engine.sessions() as session:
            recent = await runs.recent_runs(session, args.id, args.limit)
            if not recent and args.id not in engine.definitions:
                raise UnknownBroadcast(args.id)
            for run in recent:
                line = (
                    f"#{run.id:<6} {_local(engine, run.scheduled_at)}  {run.trigger:<8} "
                    f"{run.status:<9}"
                )
                if run.status == "skipped" or run.status == "failed":
                    print(f"{line} {run.reason or ''}")
                    continue
                stats = await runs.run_stats(session, run)
                print(f"{line} {run.recipients} recipients: {_counts(stats)}")
                if run.form_id:
                    answers = await surveys.survey_stats(session, run)
                    print(f"        survey {run.form_id}: {_answers(answers)}")
        if not recent:
            print(f"{args.id}: no runs yet")
        return 0

    return _run(config, body)


def _counts(stats: runs.RunStats) -> str:
    order = ["sent", "failed", "pending", "sending"]
    keys = order + sorted(k for k in stats.counts if k not in order)
    parts = [f"{k} {stats.counts[k]}" for k in keys if stats.counts.get(k)]
    return ", ".join(parts) or "nothing to send"


def _answers(stats: surveys.SurveyStats) -> str:
    if stats.rate is not None:
        return f"answered {stats.answered}/{stats.audience} ({stats.rate:.0%})"
    return f"{stats.writers} people wrote to the bot since (a group prompt)"


def cmd_add(args: argparse.Namespace, config: Config) -> int:
    raw = _definition(args)

    async def body(engine: BroadcastEngine) -> int:
        if args.id in engine.definitions and engine.definitions[args.id].source != "database":
            source = engine.definitions[args.id].source
            print(f"unionbot: {args.id!r} is defined in {source}", file=sys.stderr)
            return 1
        try:
            item = parse_broadcast(raw, "command line")
            engine.check(item)
        except DefinitionError as exc:
            print(f"unionbot: {exc}", file=sys.stderr)
            return 2
        await _store(engine, item, raw)
        upcoming = next_fire(build_trigger(item.schedule, engine.tz), engine.clock())
        print(f"added {item.id}: {item.schedule.describe()}, next {_local(engine, upcoming)}")
        print("running services take it up at their next check (broadcasts.check_seconds)")
        return 0

    return _run(config, body)


async def _store(engine: BroadcastEngine, item: Broadcast, raw: dict[str, Any]) -> None:
    now = engine.clock()
    async with engine.sessions.begin() as session:
        state = await session.get(BroadcastState, item.id)
        if state is None:
            session.add(
                BroadcastState(
                    id=item.id,
                    paused=False,
                    definition=raw,
                    first_seen_at=now,
                    updated_at=now,
                    updated_by=_actor(),
                )
            )
        else:
            state.definition, state.updated_at, state.updated_by = raw, now, _actor()


def _definition(args: argparse.Namespace) -> dict[str, Any]:
    schedule = (
        {"cron": args.cron} if args.cron else {"at": args.at} if args.at else {"every": args.every}
    )
    audience: dict[str, Any] = {}
    if args.robot:
        audience["robots"] = args.robot
    if args.appchat:
        audience["appchats"] = args.appchat
    if args.subscribers:
        audience["topic"] = args.subscribers
    if args.members:
        audience["members"] = True
    if args.birthday:
        audience["birthday"] = True
    if args.non_respondents:
        audience["non_respondents"] = args.non_respondents
    raw: dict[str, Any] = {
        "id": args.id,
        "title": args.title or args.id,
        "schedule": schedule,
        "audience": audience,
        "channel": args.channel,
        "format": args.format,
        "enabled": not args.disabled,
    }
    for key in ("text", "template", "topic", "form"):
        if getattr(args, key):
            raw[key] = getattr(args, key)
    if args.quiet_hours:
        raw["quiet_hours"] = args.quiet_hours
    if args.event:
        raw["event"] = dict(e.partition("=")[::2] for e in args.event)
    return raw


def cmd_remove(args: argparse.Namespace, config: Config) -> int:
    async def body(engine: BroadcastEngine) -> int:
        async with engine.sessions.begin() as session:
            state = await session.get(BroadcastState, args.id)
            if state is None or state.definition is None:
                where = engine.definitions[args.id].source if args.id in engine.definitions else ""
                print(
                    f"unionbot: {args.id!r} was not added from the command line"
                    + (f" (it is in {where})" if where else ""),
                    file=sys.stderr,
                )
                return 1
            state.definition = None  # its runs stay, for the record
            state.updated_at, state.updated_by = engine.clock(), _actor()
        print(f"removed {args.id}")
        return 0

    return _run(config, body)


def cmd_members_import(args: argparse.Namespace, config: Config) -> int:
    if not args.file.exists():
        print(f"unionbot: {args.file} does not exist", file=sys.stderr)
        return 2
    members, problems = roster.read_roster(args.file)

    async def main() -> int:
        # Only the roster: a broadcast whose template is broken must not stop an import.
        async with open_core_services(config) as services:
            report = await roster.import_members(services.sessions, config, members)
            async with services.sessions() as session:
                born = await session.scalar(
                    select(func.count()).where(
                        User.member_status == "member", User.birthday.is_not(None)
                    )
                )
        for problem in [*problems, *report.problems][:50]:
            print(f"  skipped {problem}")
        print(
            f"members: {report.added} added, {report.updated} updated, "
            f"{len(problems) + len(report.problems)} rows skipped"
        )
        print(f"members with a birthday on file: {born}")
        return 0 if members else 1

    return asyncio.run(main())


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"

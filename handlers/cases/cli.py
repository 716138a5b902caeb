"""`unionbot cases …`: the office's view of cases, and a cadre's command from the terminal."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy import select

from bot import keys
from bot.config import Config
from bot.messages import Incoming, Kind
from bot.render import cn_time
from handlers.cases import labels, service
from handlers.cases.models import ACTIVE, Case
from handlers.cases.roster import CATEGORY_NAMES

# Runs ``body`` with the whole app (every feature) built around it: handed in by the command
# line that registers these commands, which is the one place that knows every feature.
InApp = Callable[[Config, Callable[[web.Application], Awaitable[Any]]], Awaitable[Any]]


def add_commands(sub: Any, common: argparse.ArgumentParser, in_app: InApp) -> None:
    cases = sub.add_parser("cases", help="cases forwarded to cadres").add_subparsers(
        title="cases commands"
    )
    listing = cases.add_parser("list", parents=[common], help="open cases (--all: every case)")
    listing.add_argument("--all", action="store_true")
    listing.set_defaults(run=cmd_list)
    show = cases.add_parser("show", parents=[common], help="one case with its history")
    show.add_argument("number", type=int)
    show.set_defaults(run=cmd_show)
    stats = cases.add_parser(
        "stats", parents=[common], help="open, overdue, median first response, satisfaction"
    )
    stats.set_defaults(run=cmd_stats)
    command = cases.add_parser(
        "command", parents=[common], help="send a cadre's WeCom command, e.g. '#3 回复 您好'"
    )
    command.add_argument("--as", dest="cadre", required=True, help="the cadre's WeCom userid")
    command.add_argument("text")
    command.set_defaults(run=cmd_command)
    for parser in (listing, show, stats, command):
        parser.set_defaults(in_app=in_app)


def _run(args: argparse.Namespace, config: Config, body: Any) -> Any:
    return asyncio.run(args.in_app(config, body))


def cmd_list(args: argparse.Namespace, config: Config) -> int:
    async def body(app: web.Application) -> None:
        services = app[keys.SERVICES]
        async with services.sessions() as session:
            query = select(Case).order_by(Case.id)
            if not args.all:
                query = query.where(Case.status.in_(ACTIVE))
            rows = (await session.execute(query)).scalars().all()
        roster = service.desk(services).roster
        for c in rows:
            print(
                f"#{c.id:<5} {CATEGORY_NAMES[c.category]:<4} {labels.status_name(c.status):<6} "
                f"{roster.name_of(c.assignee):<6} {cn_time(c.created_at)}  "
                f"{(c.summary.splitlines() or [''])[0][:30]}"
            )
        if not rows:
            print("没有工单。")

    _run(args, config, body)
    return 0


def cmd_show(args: argparse.Namespace, config: Config) -> int:
    async def body(app: web.Application) -> int:
        services = app[keys.SERVICES]
        async with services.sessions() as session:
            case = await service.get_case(session, args.number)
        if case is None:
            print(f"没有工单 #{args.number}")
            return 1
        print(
            f"工单 #{case.id} {CATEGORY_NAMES[case.category]} {labels.status_name(case.status)} "
            f"负责人 {service.desk(services).roster.name_of(case.assignee)}"
        )
        print(
            f"开单 {cn_time(case.created_at)}  首次响应时限 {cn_time(case.first_response_due)}"
            f"  办结时限 {cn_time(case.resolution_due)}"
        )
        print(case.summary)
        roster = service.desk(services).roster
        for e in await service.events_of(services, case.id):
            print(f"  {labels.event_line(e, roster)}")
        return 0

    return int(_run(args, config, body))


def cmd_stats(args: argparse.Namespace, config: Config) -> int:
    async def body(app: web.Application) -> None:
        s = await service.stats(app[keys.SERVICES])
        median = (
            "—"
            if s.median_first_response_hours is None
            else f"{s.median_first_response_hours:.1f} 工作小时"
        )
        rated = sum(s.satisfaction.values())
        print(f"未结 {s.open}，超时 {s.overdue}，已结 {s.closed}")
        print(f"首次响应中位数 {median}")
        print(
            f"满意度（{rated} 人评价）：满意 {s.satisfaction[1]}，一般 {s.satisfaction[2]}，"
            f"不满意 {s.satisfaction[3]}"
        )

    _run(args, config, body)
    return 0


def cmd_command(args: argparse.Namespace, config: Config) -> int:
    # No background sender in this short-lived process: what it queues is sent below, once,
    # so nothing is left half-sent when the process exits.
    config = dataclasses.replace(config, outbox=dataclasses.replace(config.outbox, enabled=False))

    async def body(app: web.Application) -> None:
        incoming = Incoming(
            channel="work",
            account=config.wechat.work.corp_id or "corp",
            user_id=args.cadre,
            kind=Kind.TEXT,
            dedup_key=uuid.uuid4().hex,
            text=args.text,
            raw_type="text",
        )
        for reply in await app[keys.PIPELINE].handle(incoming, budget=None) or []:
            print(reply.text)
        # Hand the answer on before this process exits (the service's sender would too).
        while await app[keys.OUTBOX].work_once():
            pass

    _run(args, config, body)
    return 0

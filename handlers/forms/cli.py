"""``unionbot forms export`` and ``unionbot forms set-status``: for volunteers without the
console. Changes go through the database and the outbox; the running service sends the
pushes they queue."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import Config

if TYPE_CHECKING:  # the heavy imports wait until a command runs: `unionbot --help` stays quick
    from bot.services import Services

STATUS_CHOICES = ("accepted", "done", "cancelled")


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    open_services: Callable[[Config], AbstractAsyncContextManager[Services]],
) -> None:
    """``open_services`` builds the app's services (handed in by the command line, the one
    place that knows every feature)."""
    forms = sub.add_parser("forms", help="chat forms: export, status").add_subparsers(
        title="forms commands"
    )
    export = forms.add_parser(
        "export", parents=[common], help="one day of one form as an XLSX or CSV file"
    )
    export.add_argument("--form", required=True, help="form id, e.g. medicine")
    export.add_argument(
        "--date", type=_day, help="YYYY-MM-DD, Beijing time (default: today)", default=None
    )
    export.add_argument("--format", choices=["xlsx", "csv"], default="xlsx")
    export.add_argument("--out", help="file to write (default: <form>-<date>.<format>)")
    export.add_argument("--mask-phone", action="store_true", help="hide the middle of phones")
    export.set_defaults(run=cmd_export, open_services=open_services)

    status = forms.add_parser(
        "set-status", parents=[common], help="move a submission on; the worker is told"
    )
    status.add_argument("number", help="e.g. 药-20261122-0007")
    status.add_argument("status", choices=STATUS_CHOICES)
    status.add_argument("--note", default="", help="a short note for the worker")
    status.add_argument("--by", default="volunteer", help="who made the change (audit trail)")
    status.set_defaults(run=cmd_set_status, open_services=open_services)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def cmd_export(args: argparse.Namespace, config: Config) -> int:
    from bot.render import CHINA
    from handlers.forms import export, registry_of, submissions

    async def run() -> int:
        async with args.open_services(config) as services:
            form = registry_of(services).get(args.form)
            if form is None:
                known = ", ".join(sorted(registry_of(services).forms))
                print(f"unionbot: no form {args.form!r} (known: {known})", file=sys.stderr)
                return 2
            day = args.date or services.clock().astimezone(CHINA).date()
            rows = await submissions.on_day(services, form.id, day)
        header, body = export.table(form, rows, masked=args.mask_phone)
        out = Path(args.out or f"{form.id}-{day:%Y%m%d}.{args.format}")
        if args.format == "csv":
            export.write_csv(out, header, body)
        else:
            export.write_xlsx(out, form.title, header, body)
        print(f"{form.title} {day}: {len(rows)} rows → {out}")
        return 0

    return asyncio.run(run())


def cmd_set_status(args: argparse.Namespace, config: Config) -> int:
    from handlers.forms import registry_of, submissions

    async def run() -> int:
        async with args.open_services(config) as services:
            registry = registry_of(services)
            try:
                changed = await submissions.set_status(
                    services, registry, args.number, args.status, f"cli:{args.by}", args.note
                )
            except submissions.StatusError as exc:
                print(f"unionbot: {exc}", file=sys.stderr)
                return 1
        form = registry.get(changed.submission.form_id)
        old = form.status_label(changed.old) if form else changed.old
        new = form.status_label(args.status) if form else args.status
        told = "已通知职工" if changed.pushed else "职工回复「我的申请」可看到"
        print(f"{args.number}: {old} → {new}（{told}）")
        return 0

    return asyncio.run(run())

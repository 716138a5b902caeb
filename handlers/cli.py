"""The ``unionbot`` command: serve, chat, ask, db upgrade, check-config."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import os
import signal
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from bot import keys
from bot.config import Config, ConfigError, find_config_file, load_config
from bot.errors import ContentError
from bot.logs import setup_logging
from bot.messages import Incoming, Kind


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"unionbot: configuration error: {exc}", file=sys.stderr)
        return 2
    run: Callable[[argparse.Namespace, Config], int] = args.run
    try:
        code = run(args, config)
        sys.stdout.flush()  # here, where a closed pipe can still be told apart
        return code
    except ContentError as exc:
        print(f"unionbot: content error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`unionbot kb eval | head`): stop quietly, as other command
        # line tools do, and keep the interpreter's last flush from failing again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for such a tool


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unionbot", description="工会聊天机器人服务")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        help="config file (default: $UNIONBOT_CONFIG, ./config.toml, then config.example.toml)",
    )
    sub = parser.add_subparsers(title="commands")

    serve = sub.add_parser("serve", parents=[common], help="start the HTTP service")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(run=cmd_serve)

    chat = sub.add_parser("chat", parents=[common], help="talk to the bot as a worker")
    chat.add_argument("--user", default="terminal-user")
    chat.add_argument("--group", default=None, help="pretend to write in this group")
    chat.set_defaults(run=cmd_chat)

    ask = sub.add_parser("ask", parents=[common], help="print the bot's reply to one message")
    ask.add_argument("text")
    ask.add_argument("--user", default="terminal-user")
    ask.set_defaults(run=cmd_ask)

    db = sub.add_parser("db", help="database commands").add_subparsers(title="db commands")
    db_up = db.add_parser("upgrade", parents=[common], help="apply migrations")
    db_up.set_defaults(run=cmd_db_upgrade)

    check = sub.add_parser("check-config", parents=[common], help="validate the config file")
    check.set_defaults(run=cmd_check_config)

    kb = sub.add_parser("kb", help="knowledge base").add_subparsers(title="kb commands")
    kb_eval = kb.add_parser("eval", parents=[common], help="accuracy on the evaluation set")
    kb_eval.add_argument(
        "--split",
        choices=["tune", "test", "all", "cv"],
        default="test",
        help="cv: each entry question held out in turn, searched without it (5 folds)",
    )
    kb_eval.add_argument("--details", action="store_true", help="list confused pairs")
    kb_eval.set_defaults(run=cmd_kb_eval)
    kb_reload = kb.add_parser(
        "reload", parents=[common], help="make the running service re-read the content"
    )
    kb_reload.set_defaults(run=cmd_kb_reload)

    from handlers.cases.cli import add_commands as add_case_commands

    add_case_commands(sub, common, with_app)
    from handlers.app import open_services
    from handlers.forms.cli import add_commands as add_form_commands

    add_form_commands(sub, common, open_services)
    from scheduler.cli import add_commands as add_broadcast_commands

    add_broadcast_commands(sub, common)  # broadcasts, members
    return parser


def pid_file(config: Config) -> Path:
    return config.base_dir / "var" / "unionbot.pid"


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    from handlers.app import init_app, reload_content

    setup_logging(config.log.level, config.log.format)
    host = args.host or config.server.host
    port = args.port or config.server.port
    app = init_app(config)

    async def on_startup(app: web.Application) -> None:
        # `unionbot kb reload` sends SIGHUP: re-read the content without a restart.
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, reload_content, app)
        # The dictionaries and indexes loaded at start live as long as the process: keep the
        # garbage collector from walking them on every full collection (latency spikes).
        gc.collect()
        gc.freeze()
        pid = pid_file(config)
        pid.parent.mkdir(parents=True, exist_ok=True)
        pid.write_text(str(os.getpid()), encoding="ascii")

    async def on_cleanup(app: web.Application) -> None:
        pid_file(config).unlink(missing_ok=True)

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    print(
        f"unionbot serving on http://{host}:{port} (config: {find_config_file(args.config)})",
        file=sys.stderr,
    )
    if config.dev.enabled:
        print(
            f"dev chat: curl -s http://{host}:{port}{config.dev.path} -d "
            '\'{"user_id":"me","text":"你好"}\'',
            file=sys.stderr,
        )
    web.run_app(app, host=host, port=port, print=None, access_log=None)
    return 0


def cmd_kb_eval(args: argparse.Namespace, config: Config) -> int:
    from handlers.knowledge import cross_validate, evaluate, format_report, load_eval_cases
    from handlers.knowledge.chat import load_kb

    kb = load_kb(config.content_paths())
    if args.split == "cv":
        print(format_report(cross_validate(kb), details=True))
        return 0
    folders = [d / "kb" for d in config.content_paths()]
    cases = load_eval_cases(folders, known_ids=kb.entries.keys())
    splits = ["tune", "test"] if args.split == "all" else [args.split]
    for split in splits:
        report = evaluate(kb, cases, split)
        print(format_report(report, details=True if args.details else None))
        print()
    return 0


def cmd_kb_reload(args: argparse.Namespace, config: Config) -> int:
    from handlers.knowledge.chat import load_kb

    load_kb(config.content_paths())  # refuse to signal the service with broken content
    pid = pid_file(config)
    try:
        os.kill(int(pid.read_text(encoding="ascii").strip()), signal.SIGHUP)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        print(f"unionbot: no running service found ({pid})", file=sys.stderr)
        return 1
    print("content checked; the service is re-reading it")
    return 0


async def with_app(config: Config, body: Callable[[web.Application], Any]) -> Any:
    """The app without a server, for a short-lived command (ask, chat, cases). It never runs
    the broadcast scheduler: a command must not fire or catch up scheduled pushes."""
    from handlers.app import init_app

    quiet = dataclasses.replace(config.broadcasts, enabled=False)
    app = init_app(dataclasses.replace(config, broadcasts=quiet))
    runner = web.AppRunner(app)
    await runner.setup()  # runs the cleanup contexts' start: database, outbox
    try:
        return await body(app)
    finally:
        await runner.cleanup()


async def _say(app: web.Application, user: str, text: str, group: str | None = None) -> list[str]:
    incoming = Incoming(
        channel="dev",
        account="dev",
        user_id=user,
        kind=Kind.TEXT,
        dedup_key=uuid.uuid4().hex,
        text=text,
        chat_id=group,
        raw_type="text",
    )
    replies = await app[keys.PIPELINE].handle(incoming, budget=None) or []
    return [r.text for r in replies]


def cmd_ask(args: argparse.Namespace, config: Config) -> int:
    setup_logging("WARNING", "text")

    async def body(app: web.Application) -> None:
        for text in await _say(app, args.user, args.text):
            print(text)

    asyncio.run(with_app(config, body))
    return 0


def cmd_chat(args: argparse.Namespace, config: Config) -> int:
    setup_logging("WARNING", "text")

    async def body(app: web.Application) -> None:
        print("与工会小助手对话（输入 exit 退出）", flush=True)
        for text in await _say(app, args.user, "你好", args.group):
            print(f"🤖 {text}\n", flush=True)
        while True:
            try:
                line = await asyncio.to_thread(input, "👷 ")
            except EOFError:
                return
            if line.strip().lower() in {"exit", "quit", "再见"}:
                return
            if not line.strip():
                continue
            for text in await _say(app, args.user, line, args.group):
                print(f"🤖 {text}\n", flush=True)

    asyncio.run(with_app(config, body))
    return 0


def cmd_db_upgrade(args: argparse.Namespace, config: Config) -> int:
    from bot.storage.db import create_engine, database_url
    from bot.storage.migrate import upgrade

    async def run() -> None:
        engine = create_engine(config)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
    print(f"database is up to date ({_masked_url(database_url(config))})")
    return 0


def cmd_check_config(args: argparse.Namespace, config: Config) -> int:
    from bot.storage.db import database_url

    channels = [
        name
        for name, on in (
            ("mp", config.wechat.mp.enabled),
            ("work", config.wechat.work.enabled),
            ("aibot", config.wechat.aibot.enabled),
            ("dev", config.dev.enabled),
        )
        if on
    ]
    print(f"config OK: {find_config_file(args.config)}")
    print(f"  database: {_masked_url(database_url(config))}")
    print(f"  channels: {', '.join(channels) or 'none'}")
    print(f"  content:  {', '.join(str(p) for p in config.content_paths())}")
    return 0


def _masked_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    sys.exit(main())

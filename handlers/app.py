"""The service put together: the core (bot/) and every feature (handlers/*, scheduler/). This is
the one module that knows them all; ``init_app(config)`` builds the web app, the CLI builds
its services through the same functions."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import fields
from datetime import datetime

from aiohttp import web

from bot import keys
from bot.app import core_services, create_app
from bot.config import Config
from bot.dispatch import Dispatcher, Router
from bot.errors import ContentError
from bot.services import system_clock
from bot.storage.migrate import upgrade
from handlers import feedback, menu
from handlers.cases import chat as cases
from handlers.cases.service import load_desk
from handlers.forms import chat as forms
from handlers.forms import load_forms
from handlers.knowledge import chat as knowledge
from handlers.services import AppServices, app_services
from scheduler import chat as subscriptions
from scheduler.setup import setup_broadcasts

log = logging.getLogger(__name__)


def init_app(
    config: Config,
    *,
    clock: Callable[[], datetime] = system_clock,
    extra_routers: Sequence[Router] = (),
) -> web.Application:
    """Build the service. ``extra_routers`` go first: a gateway (or a test) can add handlers."""
    services = build_services(config, clock)
    services.kb = services.load_kb()  # built now, not on the first worker's question
    app = create_app(services, build_dispatcher(services, extra_routers))
    # Scheduled pushes: after the outbox, which sends them (scheduler/setup.py).
    setup_broadcasts(app, services)
    return app


def build_menu() -> menu.Menu:
    main = menu.Menu()
    main.add("enrolment", "入会咨询", knowledge.enrolment_menu)
    main.add("legal", "劳动法律咨询（欠薪、工伤、合同）", knowledge.legal_menu)
    # ── forms (handlers.forms): filled in chat, handed to volunteers and cadres ──
    main.add(forms.menu_key("medicine"), "购药登记", forms.menu_action("medicine"))
    main.add(forms.menu_key("service"), "服务申请", forms.menu_action("service"))
    main.add(forms.menu_key("enrolment"), "申请入会", forms.menu_action("enrolment"))
    main.add(forms.menu_key("legal_aid"), "法律援助申请", forms.menu_action("legal_aid"))
    # ── end forms ──
    main.add("human", "转人工（工会工作人员）", cases.start_from_menu)
    main.add("feedback", "给工会留言", feedback.start)
    main.add("contact", "联系工会（热线电话）", menu.contact)
    # 订阅通知 belongs to the broadcasts feature (scheduler.chat)
    main.add("subscriptions", "订阅通知", subscriptions.show)
    return main


def build_services(config: Config, clock: Callable[[], datetime] = system_clock) -> AppServices:
    """Everything the app and every command use: the core's services and each feature's
    content (menu, knowledge base, forms, the cadres' desk), read from the content folders."""
    core = core_services(config, clock)
    content = config.content_paths()
    return AppServices(
        **{f.name: getattr(core, f.name) for f in fields(core)},
        menu=build_menu(),
        load_kb=functools.partial(knowledge.load_kb, content),
        forms=load_forms(content),
        desk=load_desk(content),
    )


@asynccontextmanager
async def open_services(config: Config) -> AsyncIterator[AppServices]:
    """The app's services for a command that needs no web app: migrations applied first when
    the config says so, the engine closed at the end."""
    services = build_services(config)
    try:
        if config.database.migrate_on_start:
            await upgrade(services.engine)
        yield services
    finally:
        await services.engine.dispose()


def build_dispatcher(services: AppServices, extra: Sequence[Router] = ()) -> Dispatcher:
    cases.setup(services)
    forms.setup(services)  # after the menu: forms a union added join it
    dispatcher = Dispatcher()
    # An answer a cadre could not push is handed over with the worker's next reply.
    dispatcher.middleware(cases.deliver_inbox)
    for router in extra:
        dispatcher.include_router(router)
    # Cases first: 人工 and the cadres' commands must not be read as questions.
    dispatcher.include_router(cases.router)
    # Forms before the knowledge base: an answer inside a form is not a new question.
    dispatcher.include_router(forms.router)
    # Within a stage, earlier routers win: the knowledge base answers before the menu's
    # "not understood" fallback.
    dispatcher.include_router(knowledge.router)
    dispatcher.include_router(feedback.router)
    dispatcher.include_router(subscriptions.router)  # 订阅 / 退订 the scheduled pushes
    dispatcher.include_router(menu.router)
    return dispatcher


def reload_content(app: web.Application) -> None:
    """Re-read the knowledge base in a thread (building it takes a second or two, which the
    event loop must not stand still for); on broken content keep serving the old one."""
    task = asyncio.get_running_loop().create_task(_reload(app))
    _RELOADS.add(task)
    task.add_done_callback(_RELOADS.discard)


_RELOADS: set[asyncio.Task[None]] = set()


async def _reload(app: web.Application) -> None:
    services = app[keys.SERVICES]
    try:
        kb = await asyncio.to_thread(knowledge.load_kb, services.config.content_paths())
    except ContentError as exc:
        log.error("content not reloaded", extra={"error": str(exc)})
        return
    app_services(services).kb = kb
    log.warning("content reloaded")

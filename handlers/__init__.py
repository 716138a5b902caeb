"""What the bot knows how to do. ``build_dispatcher`` wires every handler router in priority
order; each module exports one ``router``."""

from __future__ import annotations

from collections.abc import Sequence

from bot.dispatch import Dispatcher, Router
from bot.services import Services
from handlers import feedback, menu


def build_dispatcher(services: Services, extra: Sequence[Router] = ()) -> Dispatcher:
    services.features.setdefault("menu", menu.default_menu())
    dispatcher = Dispatcher()
    for router in extra:
        dispatcher.include_router(router)
    dispatcher.include_router(menu.router)
    dispatcher.include_router(feedback.router)
    return dispatcher

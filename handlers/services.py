"""The services of the whole app: the core's (bot.services.Services) and each feature's object,
as typed attributes. ``handlers.app.build_services`` builds them, for the web app and for every
command alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.dispatch import Context
from bot.services import Services

if TYPE_CHECKING:  # the features import this module; their types are only named here
    from handlers.cases.service import CaseDesk
    from handlers.forms.definitions import FormRegistry
    from handlers.knowledge.retrieval import KnowledgeBase
    from handlers.menu import Menu


@dataclass(kw_only=True)
class AppServices(Services):
    menu: Menu
    forms: FormRegistry
    desk: CaseDesk  # the cadres' roster and working-hours calendar
    # Building the knowledge base takes seconds and a few hundred MB: it is built when first
    # asked for (the web app asks at start; a command that never answers questions never does).
    load_kb: Callable[[], KnowledgeBase]
    _kb: KnowledgeBase | None = field(default=None, init=False, repr=False)

    @property
    def kb(self) -> KnowledgeBase:
        if self._kb is None:
            self._kb = self.load_kb()
        return self._kb

    @kb.setter
    def kb(self, value: KnowledgeBase) -> None:
        """Replaced whole by a reload (SIGHUP)."""
        self._kb = value


def app_services(services: Services) -> AppServices:
    """The app's services, from the core type handlers and jobs are given."""
    if not isinstance(services, AppServices):
        raise TypeError("services built without the features: use handlers.app.build_services")
    return services


def of(ctx: Context) -> AppServices:
    return app_services(ctx.services)

"""Routers collect handlers by decorator; the dispatcher walks them in stage order.

Stages give the priority the product needs: global commands (菜单 / 取消 / 人工) always win,
then the active flow (a form being filled), then commands and menu clicks, then the fallback.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, TypeVar

from bot.dispatch.context import Context
from bot.messages import Reply

HandlerResult = str | Reply | Sequence[str | Reply] | None
Handler = Callable[..., Awaitable[HandlerResult]]
# A filter returns False (no match), True, or a dict of extra arguments for the handler.
Filter = Callable[[Context], bool | dict[str, Any]]
H = TypeVar("H", bound=Handler)


class Stage(IntEnum):
    GLOBAL = 0
    FLOW = 1
    COMMAND = 2
    FALLBACK = 3


@dataclass(frozen=True)
class HandlerSpec:
    callback: Handler
    filters: tuple[Filter, ...]
    stage: Stage
    params: frozenset[str]
    accepts_any: bool

    def match(self, ctx: Context) -> dict[str, Any] | None:
        extra: dict[str, Any] = {}
        for check in self.filters:
            result = check(ctx)
            if result is False:
                return None
            if isinstance(result, dict):
                extra.update(result)
        return extra

    def kwargs(self, available: dict[str, Any]) -> dict[str, Any]:
        # Inject only what the handler's signature asks for (aiogram's _prepare_kwargs).
        if self.accepts_any:
            return available
        return {name: available[name] for name in self.params if name in available}


@dataclass
class Router:
    name: str
    handlers: list[HandlerSpec] = field(default_factory=list)
    children: list[Router] = field(default_factory=list)

    def include_router(self, router: Router) -> Router:
        if router is self or self in router.walk():
            raise ValueError(f"including router {router.name!r} in {self.name!r} makes a cycle")
        if router in self.walk():
            raise ValueError(f"router {router.name!r} is already included")
        self.children.append(router)
        return router

    def walk(self) -> Iterator[Router]:
        yield self
        for child in self.children:
            yield from child.walk()

    def handler(self, *filters: Filter, stage: Stage = Stage.COMMAND) -> Callable[[H], H]:
        def register(callback: H) -> H:
            signature = inspect.signature(callback)
            params = frozenset(signature.parameters)
            accepts_any = any(
                p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()
            )
            self.handlers.append(HandlerSpec(callback, filters, stage, params, accepts_any))
            return callback

        return register

    # Readable shorthands for the four stages.
    def global_command(self, *filters: Filter) -> Callable[[H], H]:
        return self.handler(*filters, stage=Stage.GLOBAL)

    def flow(self, *filters: Filter) -> Callable[[H], H]:
        return self.handler(*filters, stage=Stage.FLOW)

    def command(self, *filters: Filter) -> Callable[[H], H]:
        return self.handler(*filters, stage=Stage.COMMAND)

    def fallback(self, *filters: Filter) -> Callable[[H], H]:
        return self.handler(*filters, stage=Stage.FALLBACK)

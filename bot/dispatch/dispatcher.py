"""The root router: runs middlewares, then the first matching handler in stage order."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from bot.dispatch.context import Context
from bot.dispatch.router import HandlerResult, HandlerSpec, Router
from bot.messages import Reply

log = logging.getLogger(__name__)

Next = Callable[[Context], Awaitable[list[Reply]]]
Middleware = Callable[[Context, Next], Awaitable[list[Reply]]]


def as_replies(result: HandlerResult) -> list[Reply]:
    if result is None:
        return []
    if isinstance(result, (str, Reply)):
        result = [result]
    return [r if isinstance(r, Reply) else Reply(r) for r in result if r]


class Dispatcher(Router):
    def __init__(self, name: str = "root") -> None:
        super().__init__(name)
        self.middlewares: list[Middleware] = []
        self._ordered: list[HandlerSpec] | None = None
        # The middlewares wrapped around the router, built on the first message.
        self._chain: Next | None = None

    def middleware(self, mw: Middleware) -> Middleware:
        self.middlewares.append(mw)
        self._chain = None  # built again with the new one on the next message
        return mw

    def ordered_handlers(self) -> list[HandlerSpec]:
        # Stable sort: within a stage, routers keep their inclusion order.
        if self._ordered is None:
            specs = [h for router in self.walk() for h in router.handlers]
            self._ordered = sorted(specs, key=lambda h: h.stage)
        return self._ordered

    async def feed(self, ctx: Context) -> list[Reply]:
        if self._chain is None:
            call: Next = self._route
            for mw in reversed(self.middlewares):
                call = _Link(mw, call)
            self._chain = call
        return await self._chain(ctx)

    async def _route(self, ctx: Context) -> list[Reply]:
        for spec in self.ordered_handlers():
            extra = spec.match(ctx)
            if extra is None:
                continue
            available = {
                "ctx": ctx,
                "message": ctx.message,
                "text": ctx.text,
                "state": ctx.state,
                "services": ctx.services,
                "render": ctx.render,
                **{k: v for k, v in ctx.extra.items() if not k.startswith("_")},
                **extra,
            }
            result = await spec.callback(**spec.kwargs(available))
            return [*ctx.replies, *as_replies(result)]
        log.warning("no handler matched", extra={"channel": ctx.message.channel})
        return list(ctx.replies)


class _Link:
    """One middleware with the rest of the chain: calling it returns the middleware's own
    coroutine, so a chain of n middlewares adds no coroutine of its own per message."""

    __slots__ = ("_middleware", "_next")

    def __init__(self, middleware: Middleware, nxt: Next) -> None:
        self._middleware = middleware
        self._next = nxt

    def __call__(self, ctx: Context) -> Awaitable[list[Reply]]:
        return self._middleware(ctx, self._next)

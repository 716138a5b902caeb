"""订阅 / 退订 / 我的订阅: which topics' pushes (直播, 夜校, 送清凉 …) a worker receives.

Topics come from ``broadcasts.topics``. An unsubscribe is stored, and every push about the
topic leaves the worker out, also one that goes to all members.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from bot.dispatch import Context, Router
from bot.dispatch.filters import prefix, words
from bot.dispatch.router import Filter
from scheduler import subscriptions as repo
from scheduler.audiences import PUSH

router = Router("subscriptions")

SUBSCRIBE = ("订阅", "我要订阅", "关注")
UNSUBSCRIBE = ("退订", "取消订阅", "不再接收", "不要推送")
SHOW = ("我的订阅", "订阅通知", "订阅管理", "查看订阅")
# Past this many characters, words after 订阅 that name no topic are a question, not a
# command ("订阅号怎么关注"): the knowledge base gets them.
COMMAND_TAIL = 8


def _command(*choices: str) -> Filter:
    """``prefix`` (longest word first: 取消订阅 before 订阅), except that a long tail naming no
    topic makes the message a question."""
    command = prefix(*sorted(choices, key=len, reverse=True))
    firsts = frozenset(c[0] for c in choices)  # most messages stop here

    def check(ctx: Context) -> bool | dict[str, Any]:
        if unicodedata.normalize("NFKC", ctx.text.strip()[:1]) not in firsts:
            return False
        found = command(ctx)
        if not isinstance(found, dict):
            return False
        args = found["args"]
        matched, _ = repo.match_topics(args, ctx.services.config.broadcasts.topics)
        if args and not matched and len(args) > COMMAND_TAIL:
            return False
        return found

    return check


async def show(ctx: Context) -> str:
    """The menu item: every topic, what the worker has chosen, how to change it."""
    mine = await _mine(ctx)
    return ctx.render(
        "subscriptions",
        topics=ctx.services.config.broadcasts.topics,
        mine=mine,
        pushable=ctx.message.channel in PUSH,
    )


@router.command(words(*SHOW))
async def show_mine(ctx: Context) -> str:
    return await show(ctx)


@router.command(_command(*UNSUBSCRIBE))
async def unsubscribe(ctx: Context, args: str) -> str:
    return await _change(ctx, args, subscribed=False)


@router.command(_command(*SUBSCRIBE))
async def subscribe(ctx: Context, args: str) -> str:
    return await _change(ctx, args, subscribed=True)


async def _change(ctx: Context, args: str, *, subscribed: bool) -> str:
    topics = ctx.services.config.broadcasts.topics
    if not args:
        return await show(ctx)
    found, unknown = repo.match_topics(args, topics)
    if not found:
        return ctx.render("subscription_unknown", words="、".join(unknown), topics=topics)
    if ctx.user_id is None:  # a message recovered after a crash has no user row at hand
        return ctx.render("error")
    async with ctx.services.sessions.begin() as session:
        await repo.set_subscribed(session, ctx.user_id, found, subscribed, ctx.services.clock())
    return ctx.render(
        "subscription_changed",
        subscribed=subscribed,
        changed=found,
        mine=await _mine(ctx),
        pushable=ctx.message.channel in PUSH,
    )


async def _mine(ctx: Context) -> list[str]:
    if ctx.user_id is None:
        return []
    async with ctx.services.sessions() as session:
        return await repo.subscribed_topics(session, ctx.user_id)

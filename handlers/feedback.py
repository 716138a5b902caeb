"""给工会留言: a worker leaves a message; it is pushed to the cadres' group as a card.

A two-step flow whose state lives in the database, so a restart between the two messages
does not lose it.
"""

from __future__ import annotations

import logging

from bot.dispatch import Context, Router
from bot.dispatch.filters import state, words
from bot.logs import mask_phone
from bot.messages import Kind
from bot.outbound.outbox import Channel
from bot.storage import repo

log = logging.getLogger(__name__)
router = Router("feedback")

STATE = "feedback:wait"
CADRE_GROUP = "cadres"  # robot name in [wechat.robot.keys]


async def start(ctx: Context) -> str:
    ctx.state.set(STATE)
    return ctx.render("feedback_ask")


@router.flow(state(STATE))
async def receive(ctx: Context) -> str:
    if ctx.message.kind is not Kind.TEXT or not ctx.text.strip():
        return ctx.render("feedback_ask")
    note = ctx.text.strip()[:500]
    ctx.state.clear()
    card = ctx.render(
        "feedback_card",
        note=mask_phone(note),
        channel=ctx.message.channel,
        user=ctx.message.user_id[-6:],
        group=ctx.message.chat_id,
    )
    if CADRE_GROUP in ctx.services.config.wechat.robot.keys:
        async with ctx.services.sessions.begin() as session:
            await repo.enqueue(
                session,
                now=ctx.services.clock(),
                dedup_key=f"feedback:{ctx.message.channel}:{ctx.message.dedup_key}",
                channel=Channel.ROBOT,
                recipient=CADRE_GROUP,
                payload={"type": "markdown", "text": card},
            )
        ctx.services.wake_outbox()
    else:
        log.warning("no cadre group configured; feedback kept in the message log only")
    return ctx.render("feedback_thanks", note=note[:60] + ("…" if len(note) > 60 else ""))


@router.command(words("留言", "给工会留言", "我要留言", "意见建议", "提意见", "提建议"))
async def start_by_word(ctx: Context) -> str:
    return await start(ctx)

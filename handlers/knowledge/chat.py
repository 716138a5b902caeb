"""Questions about enrolment and labour law, answered from the knowledge base.

Sure → the answer (key fact first, legal basis last); unsure between a few → 「您是想问」 and a
number picks one; not at all → fall through to the polite "not understood". For the
commonest disputes an answer may end with a follow-up question whose reply refines it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.dispatch import Context, Router
from bot.dispatch.filters import state
from bot.messages import Kind
from bot.text import as_choice
from handlers.knowledge import Entry, KnowledgeBase, Match
from handlers.services import of

log = logging.getLogger(__name__)
router = Router("knowledge")

CHOOSE = "kb:choose"
FOLLOWUP = "kb:followup"
FEATURE = "kb"


def get_kb(ctx: Context) -> KnowledgeBase:
    return of(ctx).kb


def render_entry(ctx: Context, entry: Entry) -> str:
    """The answer, then the follow-up question (remembered in the state), then the source."""
    body = ctx.services.render.from_string(entry.answer)
    if entry.followup is not None:
        ctx.state.set(FOLLOWUP, entry=entry.id)
    else:
        ctx.state.clear()
    return ctx.render(
        "kb_answer", body=body, entry=entry, followup=entry.followup.ask if entry.followup else None
    )


# ── a reply to 「您是想问」 or to a follow-up question ─────────────────────────────────────────


def _picked(ctx: Context) -> bool | dict[str, Any]:
    if ctx.message.kind is not Kind.TEXT or ctx.state.name not in (CHOOSE, FOLLOWUP):
        return False
    kb = get_kb(ctx)
    reply = ctx.folded
    if ctx.state.name == CHOOSE:
        ids: list[str] = list(ctx.state.data.get("ids", []))
        number = as_choice(reply, len(ids))
        if number is not None and ids[number - 1] in kb.entries:
            return {"entry": kb.entries[ids[number - 1]]}
        return False
    asked = kb.entries.get(str(ctx.state.data.get("entry", "")))
    if asked is None or asked.followup is None:
        return False
    target = asked.followup.target(ctx.text)
    return {"entry": kb.entries[target]} if target in kb.entries else False


@router.flow(state(CHOOSE, FOLLOWUP), _picked)
async def picked(ctx: Context, entry: Entry) -> str:
    return render_entry(ctx, entry)


# ── a question ────────────────────────────────────────────────────────────────────────────


def has_words(text: str) -> bool:
    """Whether the text has a word to look up. A bare number or sign (1, -1, +1, ½, #1) has
    none, and searching it would find whatever article mentions a 1 (N+1 代通知金)."""
    return any(char.isalpha() for char in text)


def _search(ctx: Context) -> bool | dict[str, Any]:
    if ctx.message.kind is not Kind.TEXT or not has_words(ctx.text):
        return False
    match = get_kb(ctx).search(ctx.text)
    return False if match.decision == "none" else {"match": match}


@router.fallback(_search)
async def answer(ctx: Context, match: Match) -> str:
    if match.decision == "answer" and match.entry is not None:
        return render_entry(ctx, match.entry)
    entries = [c.entry for c in match.candidates]
    ctx.state.set(CHOOSE, ids=[e.id for e in entries])
    return ctx.render("kb_choose", entries=entries)


# ── menu items: a nudge with example questions ──────────────────────────────────────────────


async def enrolment_menu(ctx: Context) -> str:
    return ctx.render(
        "kb_topic",
        topic="入会",
        examples=["送外卖的能入会吗", "会费交多少", "单位没有工会怎么办", "怎么在网上申请入会"],
    )


async def legal_menu(ctx: Context) -> str:
    return ctx.render(
        "kb_topic",
        topic="劳动法律",
        examples=[
            "老板拖了三个月工资咋整",
            "没签合同能要双倍工资吗",
            "干活伤了手算工伤吗",
            "被开除了能要赔偿吗",
            "加班费怎么算",
        ],
    )


def load_kb(content_dirs: Sequence[Path]) -> KnowledgeBase:
    """Load (or reuse) the knowledge base under ``<content>/kb/``. Loading segments every
    question with jieba, so apps on the same unchanged content share one immutable index."""
    folders = tuple(d / "kb" for d in content_dirs)
    return _load(folders, _content_stamp(folders))


@functools.lru_cache(maxsize=4)
def _load(folders: tuple[Path, ...], stamp: tuple[tuple[str, float], ...]) -> KnowledgeBase:
    kb = KnowledgeBase.load(folders)
    log.info("knowledge base loaded", extra={"entries": len(kb.entries)})
    return kb


def _content_stamp(folders: Sequence[Path]) -> tuple[tuple[str, float], ...]:
    files = [f for d in folders if d.is_dir() for f in sorted(d.iterdir())]
    return tuple((str(f), f.stat().st_mtime) for f in files if f.is_file())

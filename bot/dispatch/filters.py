"""Small reusable filters for router decorators."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

from bot.dispatch.context import Context
from bot.dispatch.router import Filter
from bot.messages import Kind
from bot.text import normalise


def words(*choices: str) -> Filter:
    """The whole message (ignoring punctuation and spaces) is one of ``choices``. A choice that
    is only punctuation (「？」) would match every message without a word (「。」, an empty one)
    and is left out: such messages belong to whatever flow the worker is in."""
    wanted = frozenset(folded for c in choices if (folded := normalise(c)))

    def check(ctx: Context) -> bool:
        return ctx.message.kind is Kind.TEXT and ctx.folded in wanted

    return check


def prefix(*choices: str) -> Filter:
    """The message starts with a command word; the rest is passed as ``args``."""
    folded = tuple(normalise(c) for c in choices)

    def check(ctx: Context) -> bool | dict[str, Any]:
        if ctx.message.kind is not Kind.TEXT:
            return False
        text = unicodedata.normalize("NFKC", ctx.text).strip()
        for original, key in zip(choices, folded, strict=True):
            if normalise(text[: len(original)]) == key:
                return {"args": text[len(original) :].strip()}
        return False

    return check


def event(*names: str) -> Filter:
    wanted = frozenset(n.lower() for n in names)

    def check(ctx: Context) -> bool:
        return ctx.message.kind is Kind.EVENT and (ctx.message.event or "") in wanted

    return check


def click(*keys: str) -> Filter:
    """A custom-menu click (CLICK event) with one of ``keys``."""
    wanted = frozenset(keys)

    def check(ctx: Context) -> bool:
        m = ctx.message
        return m.kind is Kind.EVENT and m.event == "click" and (m.event_key or "") in wanted

    return check


def kind(*kinds: Kind) -> Filter:
    wanted = frozenset(kinds)

    def check(ctx: Context) -> bool:
        return ctx.message.kind in wanted

    return check


def state(*prefixes: str) -> Filter:
    """The conversation is in a state starting with one of ``prefixes`` (``"form:"``)."""

    def check(ctx: Context) -> bool:
        name = ctx.state.name
        return name is not None and name.startswith(tuple(prefixes))

    return check


def contains(keywords: Iterable[str]) -> Filter:
    folded = tuple(normalise(k) for k in keywords)

    def check(ctx: Context) -> bool:
        return ctx.message.kind is Kind.TEXT and any(k in ctx.folded for k in folded)

    return check

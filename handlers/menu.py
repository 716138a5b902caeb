"""Greetings, the main menu, 取消 / 人工, events, and the polite answers to what we cannot read.

The menu lists services as numbered items; ``handlers.app.build_menu`` fills it with what is
really there, so the numbers always match a working service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.dispatch import Context, Router
from bot.dispatch.filters import click, event, kind, words
from bot.messages import Kind
from bot.text import as_choice, normalise
from handlers.services import of

router = Router("menu")

MENU_WORDS = ("菜单", "主菜单", "目录", "帮助", "help", "menu", "?", "？", "功能", "服务")
GREETINGS = (
    "你好",
    "您好",
    "hi",
    "hello",
    "在吗",
    "在不在",
    "哈喽",
    "嗨",
    "早上好",
    "晚上好",
    "下午好",
    "你好呀",
    "您好呀",
    "有人吗",
)
THANKS = ("谢谢", "多谢", "感谢", "谢谢你", "谢谢啦", "好的谢谢", "thanks", "thankyou", "辛苦了")
CANCEL_WORDS = ("取消", "退出", "算了", "不办了", "结束")
HUMAN_WORDS = (
    "人工",
    "转人工",
    "人工服务",
    "找人工",
    "人工客服",
    "客服",
    "我要人工",
    "我要找人工",
    "找工作人员",
    "联系工作人员",
    "转工作人员",
    "真人",
)

MenuAction = Callable[[Context], Awaitable[str | None]]


@dataclass(frozen=True)
class MenuItem:
    key: str
    title: str
    action: MenuAction


@dataclass
class Menu:
    items: list[MenuItem] = field(default_factory=list)
    # The menu text is the same for everyone: render it once per greeting.
    _texts: dict[str | None, str] = field(default_factory=dict)

    def add(self, key: str, title: str, action: MenuAction) -> None:
        self.items = [i for i in self.items if i.key != key] + [MenuItem(key, title, action)]
        self._texts.clear()

    def pick(self, text: str) -> MenuItem | None:
        number = as_choice(normalise(text), len(self.items))
        return None if number is None else self.items[number - 1]


async def contact(ctx: Context) -> str:
    return ctx.render("contact")


def get_menu(ctx: Context) -> Menu:
    return of(ctx).menu


def render_menu(ctx: Context, greeting: str | None = None) -> str:
    menu = get_menu(ctx)
    text = menu._texts.get(greeting)
    if text is None:
        text = menu._texts[greeting] = ctx.render("menu", items=menu.items, greeting=greeting)
    return text


# ── global commands: they work in any state ────────────────────────────────────────────────


# 「？」 in MENU_WORDS matches no message here (``words`` leaves out choices without a word):
# a message without words is left to the flow the worker is in, and shows the menu only
# outside one (``nothing_to_read``).
@router.global_command(words(*MENU_WORDS))
async def show_menu(ctx: Context) -> str:
    ctx.state.clear()
    return render_menu(ctx)


@router.global_command(words(*CANCEL_WORDS))
async def cancel(ctx: Context) -> str:
    ctx.state.clear()
    return ctx.render("cancelled")


# ── commands, events and menu clicks ───────────────────────────────────────────────────────


@router.command(words(*GREETINGS))
async def greet(ctx: Context) -> str:
    return render_menu(ctx, greeting=f"您好！我是{ctx.services.config.bot.name}。")


@router.command(words(*THANKS))
async def thanks(ctx: Context) -> str:
    return ctx.render("thanks")


@router.command(event("subscribe", "enter_chat", "enter_agent"))
async def welcome(ctx: Context) -> str:
    return render_menu(ctx, greeting=ctx.render("welcome", bot_name=ctx.services.config.bot.name))


@router.command(event("unsubscribe"))
async def unsubscribed(ctx: Context) -> None:
    ctx.state.clear()  # nothing can be sent to someone who left


@router.command(click("MENU", "menu"))
async def clicked_menu(ctx: Context) -> str:
    return render_menu(ctx)


def _picked_item(ctx: Context) -> bool | dict[str, MenuItem]:
    if ctx.message.kind is not Kind.TEXT:
        return False
    item = get_menu(ctx).pick(ctx.folded)
    return {"item": item} if item is not None else False


@router.command(_picked_item)
async def menu_item(ctx: Context, item: MenuItem) -> str | None:
    return await item.action(ctx)


def _not_an_item(ctx: Context) -> bool:
    # 「0」「99」「-1」「+1」「½」「#1」: a number and no word, but no item of the menu.
    text = ctx.folded
    return (
        ctx.message.kind is Kind.TEXT
        and any(char.isnumeric() for char in text)
        and not any(char.isalpha() for char in text)
    )


@router.command(_not_an_item)
async def not_an_item(ctx: Context) -> str:
    ctx.state.clear()  # the next number picks from this menu, not from an earlier list
    return render_menu(ctx, greeting="没有这个选项。")


def _nothing_to_read(ctx: Context) -> bool:
    # 「？」「。」「……」「!!!」 or an empty message, and no flow took it: the menu helps.
    return ctx.message.kind is Kind.TEXT and not ctx.folded


@router.command(_nothing_to_read)
async def nothing_to_read(ctx: Context) -> str:
    ctx.state.clear()
    return render_menu(ctx)


# ── fallbacks ──────────────────────────────────────────────────────────────────────────────

_KIND_NAMES = {
    "image": "图片",
    "voice": "语音",
    "video": "视频",
    "shortvideo": "小视频",
    "location": "位置",
    "link": "链接",
    "file": "文件",
    "mixed": "图文",
}


@router.fallback(kind(Kind.OTHER))
async def unsupported(ctx: Context) -> str:
    return ctx.render("unsupported", what=_KIND_NAMES.get(ctx.message.raw_type, ""))


@router.fallback(kind(Kind.EVENT))
async def other_event(ctx: Context) -> None:
    return None  # view, location report, template-send-finished … need no answer


@router.fallback()
async def not_understood(ctx: Context) -> str:
    return ctx.render("not_understood")

"""购药登记, 服务申请, 入会申请, 法律援助申请 …: forms filled in chat, one question at a time.

The forms themselves are content (``content/forms/*.toml``); this module is the conversation:
start (menu, keyword, menu click), answer, 上一步, 修改 at the summary, 确认, and a question
asked in the middle, which is answered before the form's question is asked again. 取消 and
菜单 are global commands (handlers.menu) that clear the state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from typing import Any

from bot.dispatch import Context, Router
from bot.dispatch.filters import kind, prefix, state, words
from bot.messages import Kind
from bot.render import CHINA
from bot.services import Periodic, Services
from bot.text import as_number, normalise
from handlers.cases.service import STATE_OPEN, open_case, open_case_for
from handlers.forms import (
    FormDef,
    Invalid,
    digest,
    engine,
    prompts,
    registry_of,
    submissions,
    sweeps,
)
from handlers.forms.engine import CONFIRM, Progress
from handlers.forms.fields import Field
from handlers.knowledge import chat as knowledge
from handlers.menu import MenuAction
from handlers.services import app_services, of

router = Router("forms")

STATE_PREFIX = sweeps.STATE_PREFIX
SWEEP_SECONDS = 60.0
BACK_WORDS = ("上一步", "上一项", "上一个", "返回上一步", "退回", "回到上一步")
CONFIRM_WORDS = (
    *("确认", "确认提交", "提交", "确定", "没问题", "没错", "正确", "确认无误"),
    *("是", "是的", "对", "对的", "好", "好的", "可以", "ok"),
)
_CONFIRM = frozenset(w.lower() for w in CONFIRM_WORDS)
MY_WORDS = ("我的申请", "我的登记", "申请进度", "查进度", "查询进度", "我的购药登记")
_edit = prefix("修改", "更改", "改")
# The words of a form's summary that mean nothing outside a form.
_FORM_WORDS = frozenset(("确认", "确认提交", "提交", "确认无误", *BACK_WORDS))
MIN_QUESTION_CHARS = 4
_QUESTION = re.compile(
    r"[?？]|[吗呢么嘛]$|怎么|什么|多少|能不能|可不可以|是不是|哪里|为什么|如何|咋"
)


def setup(services: Services) -> None:
    """Register the idle-form sweep and the daily digest; put forms a union added (with a
    ``menu_title``) into the menu after the built-in ones."""
    app = app_services(services)
    services.periodic.append(Periodic("forms.idle", SWEEP_SECONDS, sweeps.remind_and_expire))
    services.periodic.append(Periodic("forms.digest", SWEEP_SECONDS, digest.send_digest))
    present = {item.key for item in app.menu.items}
    for form in app.forms.forms.values():
        if form.menu_title and menu_key(form.id) not in present:
            app.menu.add(menu_key(form.id), form.menu_title, menu_action(form.id))


def menu_key(form_id: str) -> str:
    return f"form:{form_id}"


def menu_action(form_id: str) -> MenuAction:
    """A menu item that starts the form ``form_id``."""

    async def action(ctx: Context) -> str:
        form = registry_of(ctx.services).get(form_id)
        if form is None:
            return "这项服务暂时没有开通。回复「人工」联系工会工作人员。"
        return begin(ctx, form)

    return action


def begin(ctx: Context, form: FormDef, note: str = "") -> str:
    progress = engine.begin(form, ctx.services.clock().isoformat())
    _save(ctx, form, progress)
    return _ask(ctx, form, progress, first=True, note=note)


# ── starting: a keyword, a menu click; 我的申请 ────────────────────────────────────────────


def _keyword(ctx: Context) -> bool | dict[str, Any]:
    if ctx.message.kind is not Kind.TEXT:
        return False
    form = registry_of(ctx.services).by_keyword(ctx.folded)
    return {"form": form} if form is not None else False


def _clicked(ctx: Context) -> bool | dict[str, Any]:
    m = ctx.message
    if m.kind is not Kind.EVENT or m.event != "click" or not m.event_key:
        return False
    form = registry_of(ctx.services).by_menu_key(m.event_key)
    return {"form": form} if form is not None else False


@router.command(_keyword)
async def start_by_word(ctx: Context, form: FormDef) -> str:
    return begin(ctx, form)


@router.command(_clicked)
async def start_by_click(ctx: Context, form: FormDef) -> str:
    return begin(ctx, form)


@router.command(words(*MY_WORDS))
async def my_requests(ctx: Context) -> str:
    return await _my_list(ctx)


def _form_word(ctx: Context) -> bool:
    """确认, 提交, 上一步 or 修改 2 with no form being filled (a form's own words are read
    in ``fill``). 「修改合同」 and 「改签」 are no command: they go on to the knowledge base."""
    if ctx.message.kind is not Kind.TEXT:
        return False
    if ctx.folded in _FORM_WORDS:
        return True
    edit = _edit(ctx)
    return isinstance(edit, dict) and _edits_something(ctx, str(edit["args"]))


@router.command(_form_word)
async def no_form(ctx: Context) -> str:
    return ctx.render("form_none")


# ── filling in ─────────────────────────────────────────────────────────────────────────────


@router.flow(state(STATE_PREFIX), kind(Kind.TEXT, Kind.OTHER))
async def fill(ctx: Context) -> str | list[str]:
    registry = registry_of(ctx.services)
    form = registry.get(str(ctx.state.name).removeprefix(STATE_PREFIX))
    if form is None:  # the form was taken out of the content meanwhile
        ctx.state.clear()
        return "这项服务已经停用了。回复「菜单」看看其他服务。"
    progress = Progress.from_data(ctx.state.data)
    if ctx.message.kind is not Kind.TEXT or not ctx.text.strip():
        return _ask(ctx, form, progress, error="请用文字回复。")
    folded = ctx.folded
    if not folded:  # 「。」「？」「……」: nothing to read, so the question stands
        return _ask(ctx, form, progress, error="请按下面的提示回复。")
    other = registry.by_keyword(folded)
    if other is not None:
        return begin(ctx, other, note="好的，重新开始。")
    if folded in BACK_WORDS:
        return _back(ctx, form, progress)
    if folded in MY_WORDS:
        return [await _my_list(ctx), _ask(ctx, form, progress)]
    if progress.step == CONFIRM:
        return await _at_summary(ctx, form, progress)
    field = engine.current_field(form, progress)
    if field is None:  # the definition changed under a half-filled form: carry on
        progress.step = engine.next_step(form, progress.answers)
        _save(ctx, form, progress)
        return _ask(ctx, form, progress)
    wanted = _edit_wanted(ctx, form, field)
    if wanted is not None:  # 「修改 2」 is a command, never an answer
        return _edit_before_summary(ctx, form, progress, wanted)
    # A question typed instead of an answer. Descriptions may well contain question words,
    # so they are only read as questions when they do not fit.
    if not field.long_text and _QUESTION.search(ctx.text):
        answered = _kb_answer(ctx)
        if answered is not None:
            return [answered, _ask(ctx, form, progress, note="我们接着填：")]
    try:
        value = field.parse(ctx.text, _today(ctx))
    except Invalid as exc:
        # A short word that does not fit (看情况, 随便) is a hesitant answer: ask again. A longer
        # message may be a question the worker has in the middle of the form.
        substantive = len(ctx.folded) >= MIN_QUESTION_CHARS or _QUESTION.search(ctx.text)
        answered = _kb_answer(ctx) if substantive else None
        if answered is not None:
            return [answered, _ask(ctx, form, progress, note="我们接着填：")]
        return _ask(ctx, form, progress, error=str(exc))
    if field.require_yes and value is False:
        ctx.state.clear()
        return ctx.render("form_refused", form=form, refusal=field.refusal)
    engine.answer(form, progress, value)
    _save(ctx, form, progress)
    return _ask(ctx, form, progress)


async def _at_summary(ctx: Context, form: FormDef, progress: Progress) -> str | list[str]:
    services = ctx.services
    if ctx.folded in _CONFIRM:
        sub = await submissions.submit(services, form, ctx.message, progress.answers)
        ctx.state.clear()
        done = ctx.render("form_submitted", form=form, number=sub.number)
        if not form.opens_case:
            return done
        # A legal-aid application is a case: the cadres answer it like any 转人工. Confirming
        # may be handled twice (a retried message): the case opened the first time stands.
        case = await open_case_for(services, ctx.message.conversation_key)
        if case is None:
            lines = [f"{f['label']}：{f['value']}" for f in engine.summary(form, progress.answers)]
            summary = "\n".join([f"{form.title} {sub.number}", *lines])
            case = await open_case(services, ctx.message, form.opens_case, summary)
        ctx.state.set(STATE_OPEN, case=case.id)
        return [done, ctx.render("case_from_form", case=case)]
    edit = _edit(ctx)
    if isinstance(edit, dict):
        wanted = str(edit["args"])
        target = engine.find_field(form, progress, wanted)
        if target is None:
            missing = f"没有找到「{wanted}」这一项。" if wanted else "要改哪一项？"
            note = f"{missing}请回复「修改」加序号，例如「修改 2」。"
            return _summary(ctx, form, progress, note=note)
        engine.edit(progress, target)
        _save(ctx, form, progress)
        return _ask(ctx, form, progress)
    # Only a question is looked up: 「1」 or 「好」 here is no question, and the knowledge base
    # would answer it with whatever article mentions it.
    answered = _kb_answer(ctx) if _QUESTION.search(ctx.text) else None
    if answered is not None:
        return [answered, _summary(ctx, form, progress)]
    return _summary(ctx, form, progress, note=_summary_hint(form, progress, ctx.folded))


def _summary_hint(form: FormDef, progress: Progress, folded: str) -> str:
    """What to reply at the summary; a bare line number is most likely an edit meant."""
    number = as_number(folded)
    if number is not None and 1 <= number <= len(engine.summary(form, progress.answers)):
        return f"要改第{number}项，请回复「修改 {number}」；没问题请回复「确认」提交。"
    return "请回复「确认」提交；要改哪项，回复「修改」加序号，例如「修改 2」。"


def _edit_wanted(ctx: Context, form: FormDef, field: Field) -> str | None:
    """What 「修改 …」 typed while a question waits wants changed, or None when the message is
    an answer after all: 「改一下门锁」 describing a repair, 「改革」 as a name."""
    edit = _edit(ctx)
    if not isinstance(edit, dict):
        return None
    wanted = str(edit["args"])
    if _names_an_edit([form], wanted):
        return wanted
    if not field.long_text and ctx.folded.startswith(("修改", "更改")):
        return wanted
    return None


def _edit_before_summary(ctx: Context, form: FormDef, progress: Progress, wanted: str) -> str:
    """Go back to a field already answered; anything else is changed at the summary."""
    target = engine.find_field(form, progress, wanted) if normalise(wanted) else None
    if target is not None:
        engine.edit(progress, target)
        _save(ctx, form, progress)
        return _ask(ctx, form, progress)
    if not normalise(wanted) and progress.asked:
        note = "要改前面哪一项？请回复「修改」加序号，例如「修改 1」。"
    else:
        note = "请先回答下面这一项；全部填完后，核对时每一项都可以修改。"
    return _ask(ctx, form, progress, note=note)


def _back(ctx: Context, form: FormDef, progress: Progress) -> str:
    try:
        previous = engine.back(form, progress)
    except LookupError:
        return _ask(ctx, form, progress, note="这已经是第一项了。")
    _save(ctx, form, progress)
    return _ask(ctx, form, progress, previous=previous)


async def _my_list(ctx: Context) -> str:
    m = ctx.message
    rows = await submissions.of_worker(ctx.services, m.channel, m.account, m.user_id)
    registry = registry_of(ctx.services)
    items = []
    for sub in rows:
        form = registry.get(sub.form_id)
        items.append(
            {
                "number": sub.number,
                "title": form.title if form else sub.form_id,
                "status": form.status_label(sub.status) if form else sub.status,
                "created": sub.created_at,
            }
        )
    return ctx.render("form_list", items=items)


def _kb_answer(ctx: Context) -> str | None:
    """The knowledge base's answer when it is sure, rendered without touching the state
    (``knowledge.render_entry`` would replace the form's state with its own)."""
    kb = of(ctx).kb
    if kb is None or not knowledge.has_words(ctx.text):
        return None
    match = kb.search(ctx.text)
    if match.decision != "answer" or match.entry is None:
        return None
    body = ctx.services.render.from_string(match.entry.answer)
    return ctx.render("kb_answer", body=body, entry=match.entry, followup=None)


def _edits_something(ctx: Context, wanted: str) -> bool:
    """「修改」 alone, with a line number, or with the name of a field of some form."""
    return _names_an_edit(registry_of(ctx.services).forms.values(), wanted)


def _names_an_edit(forms: Iterable[FormDef], wanted: str) -> bool:
    folded = normalise(wanted)
    if not folded or as_number(folded) is not None:
        return True
    return any(engine.names_field(form, wanted) for form in forms)


def _in_group(ctx: Context) -> bool:
    # Everyone in a group reads the bot's replies there: phone numbers are shown masked.
    return ctx.message.chat_id is not None


def _ask(ctx: Context, form: FormDef, progress: Progress, **values: Any) -> str:
    return prompts.question(ctx.services, form, progress, masked=_in_group(ctx), **values)


def _summary(ctx: Context, form: FormDef, progress: Progress, note: str = "") -> str:
    return prompts.confirmation(ctx.services, form, progress, note=note, masked=_in_group(ctx))


def _save(ctx: Context, form: FormDef, progress: Progress) -> None:
    # set() replaces the data: any reminder flag goes, so a new pause gets a new reminder.
    ctx.state.set(f"{STATE_PREFIX}{form.id}", **progress.to_data())


def _today(ctx: Context) -> date:
    return ctx.services.clock().astimezone(CHINA).date()

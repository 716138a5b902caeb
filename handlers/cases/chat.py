"""人工 / 转人工: a numbered case for the cadres, quiet while they handle it, a rating at the
end; and the cadres' commands from their WeCom app (`#12 回复 …`, `#12 认领`, `待办` …)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from bot.dispatch import Context, Router
from bot.dispatch.dispatcher import Next
from bot.dispatch.filters import state, words
from bot.messages import Kind, Reply
from bot.services import Periodic, Services
from bot.storage.models import Message
from bot.text import DIGIT, MAX_DIGITS, as_number, fold_digits
from handlers.cases import delivery, labels, service
from handlers.cases.models import ACTIVE
from handlers.cases.roster import CATEGORY_NAMES
from handlers.menu import HUMAN_WORDS
from handlers.services import of

router = Router("cases")

# 「#12 回复 …」: the number ends at a space, the end of the text, or a command word.
_COMMAND = re.compile(rf"^\s*[#＃]\s*({DIGIT}+)(.*)$", re.S)
# What reads as an attempt at a case command: 「#」 alone, or 「#」 and a number or a sign.
_ATTEMPT = re.compile(rf"^\s*[#＃]\s*(?:$|[-+−－]|{DIGIT})")
# The command words as cadres type them, and what each means.
_VERBS = {
    "回复": "回复",
    "认领": "认领",
    "转交": "转",
    "转给": "转",
    "转": "转",
    "结案": "结案",
    "交还机器人": "交还机器人",
    "查看": "查看",
}
# Shown whole in 「没有工单 #…」 up to this many digits; longer is no case number at all.
_SHOWN_DIGITS = 30
USAGE = (
    "工单命令：#12 查看，#12 认领，#12 回复 内容，#12 转 姓名，#12 结案 说明，"
    "#12 交还机器人；「待办」看待办。编号后请空一格。"
)


def setup(services: Services) -> None:
    """Register the overdue check and the sender that pushes or parks a cadre's answer."""
    services.sender_hooks.append(delivery.install)
    services.periodic.append(
        Periodic("cases.overdue", services.config.cases.check_minutes * 60, service.check_overdue)
    )


async def deliver_inbox(ctx: Context, nxt: Next) -> list[Reply]:
    """Middleware: an answer that could not be pushed is delivered with the next reply."""
    if not ctx.state.data.get("inbox"):
        return await nxt(ctx)
    waiting = await service.take_inbox(ctx.services, ctx.message.conversation_key)
    ctx.state.data.pop("inbox", None)
    ctx.state.dirty = True
    replies = await nxt(ctx)
    notes = [Reply(ctx.render("case_inbox", text=row.text)) for row in waiting]
    return [*notes, *replies]


# ── the worker's side ─────────────────────────────────────────────────────────────────────


async def start_from_menu(ctx: Context) -> str:
    return await to_human(ctx)


@router.global_command(words(*HUMAN_WORDS))
async def to_human(ctx: Context) -> str:
    existing = await service.open_case_for(ctx.services, ctx.message.conversation_key)
    if existing is not None:
        ctx.state.set(service.STATE_OPEN, case=existing.id)
        return ctx.render("case_already", case=existing)
    category, summary = await _recent(ctx)
    case = await service.open_case(ctx.services, ctx.message, category, summary)
    ctx.state.set(service.STATE_OPEN, case=case.id)
    return ctx.render("case_opened", case=case, category=CATEGORY_NAMES[category])


async def _recent(ctx: Context) -> tuple[str, str]:
    """What the worker said lately, and the category it points to (via the knowledge base)."""
    async with ctx.services.sessions() as session:
        texts = list(
            (
                await session.execute(
                    select(Message.text)
                    .where(
                        Message.conversation_key == ctx.message.conversation_key,
                        Message.kind == Kind.TEXT.value,
                        Message.dedup_key != ctx.message.dedup_key,
                    )
                    .order_by(Message.id.desc())
                    .limit(6)
                )
            ).scalars()
        )
    texts = [t for t in texts if t.strip() and t.strip() not in HUMAN_WORDS][:5]
    category = "other"
    kb = of(ctx).kb
    for text in texts:
        match = kb.search(text) if kb is not None else None
        if match is not None and match.entry is not None:
            category = "legal" if match.entry.category == "legal" else "enrolment"
            break
    summary = "\n".join(reversed(texts)) or "（职工直接要求人工服务）"
    return category, summary


@router.flow(state(service.STATE_OPEN))
async def while_with_cadre(ctx: Context) -> None:
    case = await service.open_case_for(ctx.services, ctx.message.conversation_key)
    if case is None:  # closed meanwhile on another path: back to the bot
        ctx.state.clear()
        return None
    await service.worker_wrote(ctx.services, case, ctx.message)
    return None  # quiet: the cadre answers


def _rating(ctx: Context) -> bool | dict[str, Any]:
    """While the rating question is open: 1, 2 or 3 is the rating; another number is asked
    again once; anything else (a new question, a second wrong number) drops the rating and is
    handled as any message would be."""
    if ctx.state.name != service.STATE_RATING or ctx.message.kind is not Kind.TEXT:
        return False
    if ctx.folded in {"1", "2", "3"}:
        return {"score": int(ctx.folded)}
    if as_number(ctx.folded) is not None and not ctx.state.data.get("asked_again"):
        return {"score": None}
    ctx.state.clear()
    return False


@router.flow(_rating)
async def rated(ctx: Context, score: int | None) -> str:
    if score is None:
        ctx.state.update(asked_again=True)
        return "请回复 1、2 或 3 评价这次服务：1 满意，2 一般，3 不满意。"
    await service.rate(
        ctx.services,
        int(ctx.state.data.get("case", 0)),
        score,
        f"worker:{ctx.message.user_id[-6:]}",
    )
    ctx.state.clear()
    return ctx.render("case_thanks", score=score)


# ── the cadres' side (WeCom app) ──────────────────────────────────────────────────────────


def _from_wecom(ctx: Context) -> bool:
    return ctx.message.channel == "work" and ctx.message.kind is Kind.TEXT


def _cadre_command(ctx: Context) -> bool | dict[str, Any]:
    if not _from_wecom(ctx):
        return False
    if ctx.folded == "待办":
        return {"digits": "", "verb": "待办", "rest": ""}
    if _ATTEMPT.match(ctx.text) is None:
        return False
    return parse_command(ctx.text)


def parse_command(text: str) -> dict[str, Any]:
    """「#12 回复 内容」 → digits 12, verb 回复, rest 内容. 「#①② 回复」 from a phone's input
    method is #12. Anything that is not a number followed by a space, the end or a command
    word (「#1.5 回复」「#1e3」) is verb 用法: the cadre is shown how to write it."""
    usage = {"digits": "", "verb": "用法", "rest": ""}
    m = _COMMAND.match(text)
    if m is None:
        return usage
    digits, tail = fold_digits(m.group(1)), m.group(2)
    if not (digits.isascii() and digits.isdigit()):
        return usage
    word = next((w for w in _VERBS if tail.lstrip().startswith(w)), None)
    if tail and not tail[0].isspace() and word is None:
        return usage
    tail = tail.strip()
    if not tail:
        return {"digits": digits, "verb": "查看", "rest": ""}
    if word is None:
        return usage
    return {"digits": digits, "verb": _VERBS[word], "rest": tail[len(word) :].strip()}


@router.command(_cadre_command)
async def cadre_command(ctx: Context, digits: str, verb: str, rest: str) -> str:
    services, cadre = ctx.services, ctx.message.user_id
    roster = service.desk(services).roster
    if not roster.is_cadre(cadre):
        subject = f"case:{digits[:_SHOWN_DIGITS] or '-'}"
        await service.audit(services, cadre, "refused", subject, command=verb)
        return ctx.render("case_refused")
    if verb == "用法":
        return USAGE
    if len(digits) > _SHOWN_DIGITS:
        return "没有这个编号的工单。回复「待办」查看您的待办。"
    if verb == "待办":
        return ctx.render(
            "case_todo",
            cases=await service.open_cases(services, cadre),
            names=CATEGORY_NAMES,
            statuses=labels.STATUS_NAMES,
        )
    if len(digits) > MAX_DIGITS:  # no case has a number this long: the database is not asked
        return f"没有工单 #{digits}。回复「待办」查看您的待办。"
    number = int(digits)
    async with services.sessions() as session:
        case = await service.get_case(session, number)
    if case is None:
        return f"没有工单 #{number}。回复「待办」查看您的待办。"
    if verb == "查看":
        async with services.sessions.begin() as session:
            await service.event(session, case.id, "read", cadre)
        events = await service.events_of(services, case.id)
        return ctx.render(
            "case_show",
            case=case,
            category=CATEGORY_NAMES[case.category],
            status=labels.status_name(case.status),
            events=[labels.event_line(e, roster) for e in events],
            assignee=roster.name_of(case.assignee),
        )
    if case.status not in ACTIVE:
        return f"工单 #{number} 已结束（{labels.status_name(case.status)}），不能再操作。"
    if verb == "回复":
        if not rest:
            return f"请写上回复内容，例如：#{number} 回复 您好，我们已联系单位。"
        await service.reply(services, case, cadre, rest)
        return f"已发送给职工（工单 #{number}）。"
    if verb == "认领":
        await service.claim(services, case, cadre)
        return f"工单 #{number} 由您负责。"
    if verb == "转":
        target = _find_cadre(roster, rest)
        if target is None:
            return f"名单里没有「{rest}」。请写干部的企业微信账号或姓名。"
        await service.transfer(services, case, cadre, target)
        return f"工单 #{number} 已转给 {roster.name_of(target)}。"
    if verb == "结案":
        await service.close(services, case, cadre, rest)
        return f"工单 #{number} 已结案，已请职工评价。"
    await service.hand_back(services, case, cadre)  # 交还机器人
    return f"工单 #{number} 已交还机器人。"


def _find_cadre(roster: Any, who: str) -> str | None:
    who = who.strip().lstrip("@")
    if who in roster.cadres:
        return str(who)
    return next((c.userid for c in roster.cadres.values() if c.name == who), None)

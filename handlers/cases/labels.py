"""How cases read to people: the Chinese names of a case's status and of its events. The
database keeps the short English codes; every reply, card and CLI line goes through here."""

from __future__ import annotations

from bot.render import cn_time
from handlers.cases.models import CaseEvent
from handlers.cases.roster import Roster

STATUS_NAMES = {
    "open": "待处理",
    "claimed": "已认领",
    "closed": "已结案",
    "returned": "已交还机器人",
}

EVENT_NAMES = {
    "opened": "开单",
    "worker_message": "职工补充",
    "read": "查看",
    "claimed": "认领",
    "transferred": "转交",
    "cadre_reply": "回复",
    "reply_pushed": "回复已送达",
    "reply_template": "回复已发模板通知",
    "reply_waiting": "回复待职工下次来信时送达",
    "reply_delivered": "回复已送达",
    "closed": "结案",
    "returned": "交还机器人",
    "rated": "评价",
    "overdue": "超时",
}

SCORE_NAMES = {"1": "满意", "2": "一般", "3": "不满意"}


def status_name(status: str) -> str:
    return STATUS_NAMES.get(status, status)


def event_name(kind: str) -> str:
    return EVENT_NAMES.get(kind, kind)


def actor_name(actor: str, roster: Roster) -> str:
    """「worker:a1b2c3」 → 职工（尾号a1b2c3）, 「bot」 → 机器人, a cadre's userid → the name."""
    if actor.startswith("worker:"):
        return f"职工（尾号{actor.removeprefix('worker:')}）"
    if actor == "bot":
        return "机器人"
    return roster.name_of(actor)


def event_line(e: CaseEvent, roster: Roster, width: int = 60) -> str:
    """One line of a case's history: 「11-23 10:05 认领 李律师」."""
    what = event_name(e.kind)
    text = e.text
    if e.kind == "transferred":
        what = f"转交给 {roster.name_of(str(e.detail.get('to', '')))}"
    elif e.kind == "rated":
        text = SCORE_NAMES.get(text, text)
    line = f"{cn_time(e.created_at)} {what} {actor_name(e.actor, roster)}"
    return f"{line}：{text[:width]}" if text else line

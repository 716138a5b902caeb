"""Cases forwarded to cadres, what happened to them, and replies waiting for the worker."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.models import Base, BigId, utcnow


class CaseStatus(StrEnum):
    OPEN = "open"  # waiting for a cadre
    CLAIMED = "claimed"  # a cadre has it
    CLOSED = "closed"  # answered and closed by a cadre
    RETURNED = "returned"  # handed back to the bot


# A case a cadre still has to act on.
ACTIVE = (CaseStatus.OPEN, CaseStatus.CLAIMED)


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_status", "status"),
        Index("ix_cases_conversation", "conversation_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    category: Mapped[str] = mapped_column(String(16))  # legal enrolment medicine service other
    # open → claimed → closed; returned when handed back to the bot (CaseStatus)
    status: Mapped[str] = mapped_column(String(16), default=CaseStatus.OPEN)
    channel: Mapped[str] = mapped_column(String(16))
    account: Mapped[str] = mapped_column(String(64))
    worker_id: Mapped[str] = mapped_column(String(128))
    conversation_key: Mapped[str] = mapped_column(String(255))
    summary: Mapped[str] = mapped_column(Text, default="")
    assignee: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    first_response_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    first_response_due: Mapped[datetime] = mapped_column()
    resolution_due: Mapped[datetime] = mapped_column()
    escalated: Mapped[str] = mapped_column(String(32), default="")  # "first", "first,resolution"
    satisfaction: Mapped[int | None] = mapped_column(Integer)


class CaseEvent(Base):
    """Every step of a case: opened, worker message, read, claimed, reply and its delivery,
    transfer, close, hand-back, refusal. This is the audit trail the office reads."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkerInbox(Base):
    """A cadre's answer WeChat would not let us push (outside the 48-hour window): it is
    delivered the next time the worker writes."""

    __tablename__ = "worker_inbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    conversation_key: Mapped[str] = mapped_column(String(255), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column()

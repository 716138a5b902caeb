"""Chat-form submissions, their status history, the per-day number counters and the log of
daily digests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.models import Base, BigId, utcnow


class FormSubmission(Base):
    """One submitted form. ``number`` (药-20261122-0007) is what the worker quotes."""

    __tablename__ = "form_submissions"
    __table_args__ = (
        UniqueConstraint("form_id", "day", "seq"),
        Index("ix_form_submissions_day", "form_id", "day"),
        Index("ix_form_submissions_user", "channel", "account", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    form_id: Mapped[str] = mapped_column(String(32))
    day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD in Beijing time
    seq: Mapped[int] = mapped_column(Integer)
    # submitted → accepted → done | cancelled
    status: Mapped[str] = mapped_column(String(16), default="submitted")
    channel: Mapped[str] = mapped_column(String(16))
    account: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(128))
    chat_id: Mapped[str | None] = mapped_column(String(128))
    conversation_key: Mapped[str] = mapped_column(String(255))
    # The inbound message that submitted it: a handler run twice never submits twice.
    source_key: Mapped[str] = mapped_column(String(300), unique=True)
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class FormStatusChange(Base):
    """Every status a submission went through, who set it and when."""

    __tablename__ = "form_status_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("form_submissions.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FormCounter(Base):
    """The last number handed out per form and day; bumped by one atomic upsert."""

    __tablename__ = "form_counters"

    form_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


class FormDigest(Base):
    """One row per day whose digest went out: the primary key makes it once per day, even
    with several instances running the same job."""

    __tablename__ = "form_digests"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)

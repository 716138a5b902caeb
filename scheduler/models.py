"""Scheduled pushes: the state of each broadcast, its runs and their deliveries, the workers'
topic subscriptions, and the scheduler's heartbeat.

Exactly once rests on three unique keys: a run per broadcast and scheduled time, a delivery
per run and recipient, and the outbox row per delivery (``dedup_key``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.models import Base, BigId, utcnow


class BroadcastState(Base):
    """What the database knows of a broadcast: paused or not (shared by every instance), when
    a scheduler first saw it (missed firings are counted from then), and the definition itself
    when it was added from the command line rather than a content file."""

    __tablename__ = "broadcasts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    definition: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(128), default="")


class BroadcastRun(Base):
    """One firing of a broadcast. The unique key makes two instances (or a restart) that see
    the same firing create one run; skipped firings are recorded too, with the reason."""

    __tablename__ = "broadcast_runs"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "scheduled_at"),
        Index("ix_broadcast_runs_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    broadcast_id: Mapped[str] = mapped_column(String(64))
    scheduled_at: Mapped[datetime] = mapped_column()
    trigger: Mapped[str] = mapped_column(String(16))  # schedule | catch-up | manual
    # expanding → sending → done; or skipped (missed, paused, disabled) or failed
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(255))
    form_id: Mapped[str | None] = mapped_column(String(64))  # a survey prompt's form
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    # The highest message id when the run fired: survey answers are the messages after it.
    messages_mark: Mapped[int] = mapped_column(BigInteger, default=0)
    # Who expands the audience, and until when; another instance takes over after that.
    instance: Mapped[str] = mapped_column(String(64), default="")
    lease_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expanded_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class Delivery(Base):
    """One recipient of a run: a group (robot, app chat) or a worker. The outbox row with
    ``dedup_key`` sends it; ``note`` says why there is none (e.g. outside the 48-hour window)."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("run_id", "channel", "recipient"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("broadcast_runs.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    dedup_key: Mapped[str] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(String(64))


class Subscription(Base):
    """A worker's choice about a topic. An unsubscribe is kept (``subscribed`` false), so a
    push about that topic leaves the worker out even when it goes to all members."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("user_id", "topic"),
        Index("ix_subscriptions_topic", "topic", "subscribed"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    topic: Mapped[str] = mapped_column(String(32))
    subscribed: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SchedulerHeartbeat(Base):
    """Each running scheduler, and when it last looked for due firings."""

    __tablename__ = "scheduler_heartbeat"

    instance: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)

"""The fleet's tables: the worker registry, lanes, run-time settings and provider pauses.

Workers register themselves here when they start; lanes (one per task type) and run-time
settings hold what operators change through the API without a restart; a provider pause holds
back pending tasks of one agent provider until its rate limit resets.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from rdev.db.models import Base, Task


class WorkerStatus(StrEnum):
    """What a registered worker is doing."""

    IDLE = "idle"
    BUSY = "busy"
    DRAINING = "draining"
    OFFLINE = "offline"


class Worker(Base):
    """A Celery worker node (its id is the node name, e.g. `w1@host`)."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int | None] = mapped_column(Integer)
    queues: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    concurrency: Mapped[int] = mapped_column(Integer, server_default="1")
    providers: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    version: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), server_default=WorkerStatus.IDLE.value)
    started_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_seen: Mapped[datetime] = mapped_column(server_default=func.now())
    drain_requested_at: Mapped[datetime | None]
    stop_at: Mapped[datetime | None]
    stopped_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(
            "status IN ('idle', 'busy', 'draining', 'offline')", name="status"
        ),
        Index("ix_workers_last_seen", "last_seen"),
    )


class Lane(Base):
    """A task type's concurrency limits, changeable at run time (None: the configured default)."""

    __tablename__ = "lanes"

    type: Mapped[str] = mapped_column(String(50), primary_key=True)
    max_concurrency: Mapped[int | None] = mapped_column(Integer)
    project_concurrency: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        CheckConstraint("max_concurrency IS NULL OR max_concurrency >= 0", name="max"),
        CheckConstraint(
            "project_concurrency IS NULL OR project_concurrency >= 0", name="project"
        ),
    )


class RuntimeSetting(Base):
    """A setting an operator changed at run time; it overrides the RDEV_* value."""

    __tablename__ = "runtime_settings"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ProviderPause(Base):
    """Pending tasks of `provider` wait until `until` (a rate limit with a known reset time)."""

    __tablename__ = "provider_pauses"

    provider: Mapped[str] = mapped_column(String(100), primary_key=True)
    until: Mapped[datetime]
    reason: Mapped[str | None] = mapped_column(Text)
    task_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


#: Claim counts running tasks per lane and per (project, lane); the wake-up after a slot frees
#: looks for pending ones. Both read this partial index instead of scanning every task.
ACTIVE_LANE_INDEX = Index(
    "ix_tasks_active_lane",
    Task.type,
    Task.project_id,
    Task.status,
    postgresql_where=text("status IN ('pending', 'running')"),
)

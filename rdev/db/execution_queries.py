"""Named queries of task execution: live attempts (for workspace sweeps) and callback deliveries.

A callback is claimed by one guarded UPDATE that counts the attempt and leases the row, so a
duplicated or redelivered message never posts the same callback twice at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.orm import Session

from rdev.db.models import Status, Task
from rdev.db.models_execution import Callback, CallbackAttempt, CallbackStatus


def attempt_is_running(session: Session, task_id: uuid.UUID, attempt: int) -> bool:
    """True when `attempt` is the task's current attempt and the task is running."""
    query = select(Task.id).where(
        Task.id == task_id, Task.attempt == attempt, Task.status == Status.RUNNING.value
    )
    return session.execute(query).first() is not None


def insert_callback(session: Session, task_id: uuid.UUID, url: str,
                    payload: dict[str, Any]) -> uuid.UUID:
    """Queue a callback delivery (the outbox row); its id."""
    callback_id = uuid.uuid4()
    session.execute(
        insert(Callback).values(id=callback_id, task_id=task_id, url=url, payload=payload)
    )
    return callback_id


def pending_callback_ids(session: Session, task_id: uuid.UUID) -> list[uuid.UUID]:
    """The task's callbacks not delivered yet."""
    query = select(Callback.id).where(
        Callback.task_id == task_id, Callback.status == CallbackStatus.PENDING.value
    )
    return list(session.scalars(query))


def claim_callback(session: Session, callback_id: uuid.UUID, *, lease: timedelta) -> (
    Callback | None
):
    """Start one delivery attempt of a due, unleased callback; None when it is not deliverable."""
    statement = (
        update(Callback)
        .where(
            Callback.id == callback_id,
            Callback.status == CallbackStatus.PENDING.value,
            Callback.next_attempt_at <= func.now(),
            or_(Callback.locked_until.is_(None), Callback.locked_until < func.now()),
        )
        .values(attempts=Callback.attempts + 1, locked_until=func.now() + lease)
        .returning(Callback)
        .execution_options(synchronize_session=False)
    )
    return session.scalars(statement).one_or_none()


def record_callback_attempt(
    session: Session,
    callback: Callback,
    *,
    ok: bool,
    http_status: int | None,
    error: str | None,
    duration_ms: int,
    retry_in_s: float | None,
) -> None:
    """Record one attempt and what follows: delivered, another try later, or failed for good."""
    session.execute(insert(CallbackAttempt).values(
        callback_id=callback.id, number=callback.attempts, duration_ms=duration_ms,
        http_status=http_status, ok=ok, error=error,
    ))
    values: dict[str, Any] = {"locked_until": None, "last_error": error}
    if ok:
        values.update(status=CallbackStatus.DELIVERED.value, completed_at=func.now())
    elif retry_in_s is None:
        values.update(status=CallbackStatus.FAILED.value, completed_at=func.now())
    else:
        values["next_attempt_at"] = func.now() + timedelta(seconds=retry_in_s)
    session.execute(update(Callback).where(Callback.id == callback.id).values(**values))


def lock_overdue_callbacks(session: Session, *, overdue_by: timedelta, limit: int) -> list[
    uuid.UUID
]:
    """Pending callbacks due for longer than `overdue_by` (their message was lost), locked."""
    query = (
        select(Callback.id)
        .where(
            Callback.status == CallbackStatus.PENDING.value,
            Callback.next_attempt_at < func.now() - overdue_by,
            or_(Callback.dispatched_at.is_(None), Callback.dispatched_at < func.now() - overdue_by),
            or_(Callback.locked_until.is_(None), Callback.locked_until < func.now()),
        )
        .order_by(Callback.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(query))


def mark_callbacks_dispatched(session: Session, ids: Sequence[uuid.UUID]) -> None:
    """Stamp that a delivery message for these callbacks was published."""
    if ids:
        session.execute(
            update(Callback).where(Callback.id.in_(ids)).values(dispatched_at=func.now())
        )


def list_callbacks(session: Session, task_ids: Sequence[uuid.UUID]) -> list[
    tuple[Callback, list[CallbackAttempt]]
]:
    """The callbacks of these tasks with their attempts, oldest first."""
    callbacks = list(session.scalars(
        select(Callback).where(Callback.task_id.in_(task_ids)).order_by(Callback.created_at)
    ))
    attempts: dict[uuid.UUID, list[CallbackAttempt]] = {c.id: [] for c in callbacks}
    if callbacks:
        rows = session.scalars(
            select(CallbackAttempt)
            .where(CallbackAttempt.callback_id.in_(list(attempts)))
            .order_by(CallbackAttempt.callback_id, CallbackAttempt.number)
        )
        for row in rows:
            attempts[row.callback_id].append(row)
    return [(callback, attempts[callback.id]) for callback in callbacks]

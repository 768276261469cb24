"""Every query rdev runs, each a named, typed function; the only place that builds SQL.

Status changes are guarded UPDATEs (`WHERE status = expected AND attempt = expected`) that
return the new row or None, so the caller learns whether it won. Rows are never mutated through
the ORM unit of work: every write here is one explicit statement.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Result, and_, delete, func, insert, or_, select, text, tuple_, update
from sqlalchemy.orm import Session

from rdev.db.models import TERMINAL, Attempt, Status, Task, TaskEvent


def now(session: Session) -> datetime:
    """The database's clock: every timestamp rdev compares comes from one clock."""
    return session.execute(select(func.now())).scalar_one()


ENQUEUE = text("""
WITH inserted AS (
    INSERT INTO tasks (id, project_id, type, spec, priority, max_retries, timeout_s,
                       callback_url, caller_id, idempotency_key, request_hash,
                       dispatched_at, event_seq)
    VALUES (:id, :project_id, :type, CAST(:spec AS jsonb), :priority, :max_retries, :timeout_s,
            :callback_url, :caller_id, :idempotency_key, :request_hash, now(), 1)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING *
), logged AS (
    INSERT INTO task_events (task_id, seq, attempt, kind, data)
    SELECT id, event_seq, attempt, 'enqueued',
           jsonb_build_object('type', type, 'priority', priority)
      FROM inserted
)
SELECT * FROM inserted
""")


def insert_task(session: Session, values: dict[str, Any]) -> Task | None:
    """Insert a task, stamped dispatched, with its `enqueued` event, in one statement.

    None when its idempotency key is already taken (then nothing is written).
    """
    params = {**values, "spec": json.dumps(values["spec"])}
    return session.scalars(select(Task).from_statement(ENQUEUE), params).one_or_none()


def get_task(session: Session, task_id: uuid.UUID) -> Task | None:
    """The task with this id."""
    return session.get(Task, task_id, populate_existing=True)


def get_task_by_idempotency_key(session: Session, key: str) -> Task | None:
    """The task first created with this Idempotency-Key."""
    return session.scalars(select(Task).where(Task.idempotency_key == key)).one_or_none()


def update_task(
    session: Session,
    task_id: uuid.UUID,
    *,
    status: Sequence[Status],
    values: dict[str, Any],
    attempt: int | None = None,
    extra: Sequence[Any] = (),
) -> Task | None:
    """Change a task if it is in one of `status` (and at `attempt`); the new row, or None."""
    conditions = [Task.id == task_id, Task.status.in_([s.value for s in status]), *extra]
    if attempt is not None:
        conditions.append(Task.attempt == attempt)
    statement = (
        update(Task)
        .where(*conditions)
        .values(updated_at=func.now(), **values)
        .returning(Task)
        # The session may hold this task already: the returned row must replace its attributes.
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return session.scalars(statement).one_or_none()


def claimable(at: datetime | None = None) -> list[Any]:
    """Conditions under which a pending task may start now."""
    moment = at if at is not None else func.now()
    return [
        or_(Task.not_before.is_(None), Task.not_before <= moment),
        Task.cancel_requested_at.is_(None),
    ]


# The two hottest transitions are one statement each: the guarded UPDATE of the task, the
# attempt's audit row and the event that logs it, in a data-modifying CTE (one round trip).
CLAIM = text("""
WITH claimed AS (
    UPDATE tasks
       SET status = 'running', attempt = attempt + 1, worker_id = :worker_id,
           started_at = now(), heartbeat_at = now(), updated_at = now(),
           error = NULL, error_code = NULL, event_seq = event_seq + 1
     WHERE id = :task_id AND status = 'pending'
       AND (not_before IS NULL OR not_before <= now()) AND cancel_requested_at IS NULL
 RETURNING *
), opened AS (
    INSERT INTO attempts (task_id, attempt, worker_id, started_at)
    SELECT id, attempt, worker_id, started_at FROM claimed
), logged AS (
    INSERT INTO task_events (task_id, seq, attempt, kind, data)
    SELECT id, event_seq, attempt, 'claimed',
           jsonb_build_object('worker_id', worker_id, 'attempt', attempt)
      FROM claimed
)
SELECT * FROM claimed
""")

FINISH = text("""
WITH finished AS (
    UPDATE tasks
       SET status = :status, completed_at = now(), heartbeat_at = NULL, updated_at = now(),
           result = CAST(:result AS jsonb), error = :error, error_code = :error_code,
           event_seq = event_seq + 1
     WHERE id = :task_id AND status = 'running' AND attempt = :attempt
 RETURNING *
), closed AS (
    UPDATE attempts
       SET ended_at = now(), outcome = :outcome, error_code = :error_code, error = :error
     WHERE task_id = :task_id AND attempt = :attempt AND ended_at IS NULL
       AND EXISTS (SELECT 1 FROM finished)
), logged AS (
    INSERT INTO task_events (task_id, seq, attempt, kind, data)
    SELECT id, event_seq, attempt, :kind, CAST(:data AS jsonb) FROM finished
)
SELECT * FROM finished
""")


# Typed result columns: ids come back as UUIDs, JSON as dicts, as with ORM loading.
CLAIM_TYPED = CLAIM.columns(*Task.__table__.c)
FINISH_TYPED = FINISH.columns(*Task.__table__.c)


def claim_task(session: Session, task_id: uuid.UUID, worker_id: str) -> Task | None:
    """Start the next attempt of a claimable pending task, with its audit row and event."""
    return _task_row(session.execute(CLAIM_TYPED, {"task_id": task_id, "worker_id": worker_id}))


def finish_attempt(
    session: Session,
    task_id: uuid.UUID,
    attempt: int,
    *,
    status: str,
    outcome: str,
    event: tuple[str, dict[str, Any]],
    result: dict[str, Any] | None = None,
    error: str | None = None,
    error_code: str | None = None,
) -> Task | None:
    """End the current attempt with a terminal status, closing its audit row and logging it."""
    params = {
        "task_id": task_id, "attempt": attempt, "status": status, "outcome": outcome,
        "result": None if result is None else json.dumps(result), "error": error,
        "error_code": error_code, "kind": event[0], "data": json.dumps(event[1]),
    }
    return _task_row(session.execute(FINISH_TYPED, params))


def _task_row(result: Result[Any]) -> Task | None:
    """The one task row a hot-path statement returned, as a detached Task (no ORM loading)."""
    row = result.mappings().one_or_none()
    return Task(**row) if row is not None else None


def close_attempt(
    session: Session,
    task_id: uuid.UUID,
    attempt: int,
    *,
    outcome: str,
    error_code: str | None = None,
    error: str | None = None,
) -> None:
    """Record how an attempt ended."""
    session.execute(
        update(Attempt)
        .where(Attempt.task_id == task_id, Attempt.attempt == attempt, Attempt.ended_at.is_(None))
        .values(ended_at=func.now(), outcome=outcome, error_code=error_code, error=error)
    )


def list_attempts(session: Session, task_id: uuid.UUID) -> list[Attempt]:
    """A task's attempts, oldest first."""
    query = select(Attempt).where(Attempt.task_id == task_id).order_by(Attempt.attempt)
    return list(session.scalars(query))


def heartbeat(session: Session, task_id: uuid.UUID, attempt: int) -> Task | None:
    """Refresh a running attempt's heartbeat; None when the attempt is no longer current."""
    return update_task(
        session,
        task_id,
        status=[Status.RUNNING],
        attempt=attempt,
        values={"heartbeat_at": func.now()},
    )


def append_event(
    session: Session,
    task_id: uuid.UUID,
    kind: str,
    data: dict[str, Any],
    *,
    attempt: int | None = None,
) -> TaskEvent | None:
    """Append to a task's event log with the next sequence number.

    With `attempt`, only the current attempt may write (None when fenced off).
    """
    conditions = [Task.id == task_id]
    if attempt is not None:
        conditions.append(Task.attempt == attempt)
    bumped = session.execute(
        update(Task)
        .where(*conditions)
        .values(event_seq=Task.event_seq + 1)
        .returning(Task.event_seq, Task.attempt)
    ).one_or_none()
    if bumped is None:
        return None
    seq, current_attempt = bumped
    return session.scalars(
        insert(TaskEvent)
        .values(task_id=task_id, seq=seq, attempt=current_attempt, kind=kind, data=data)
        .returning(TaskEvent)
    ).one()


def insert_event(session: Session, task: Task, kind: str, data: dict[str, Any]) -> TaskEvent:
    """Log a change of `task` whose UPDATE already reserved `task.event_seq` for this event."""
    return session.scalars(
        insert(TaskEvent)
        .values(task_id=task.id, seq=task.event_seq, attempt=task.attempt, kind=kind, data=data)
        .returning(TaskEvent)
    ).one()


def list_events(
    session: Session, task_id: uuid.UUID, *, after: int, limit: int
) -> list[TaskEvent]:
    """A task's events with a sequence number above `after`, in order."""
    query = (
        select(TaskEvent)
        .where(TaskEvent.task_id == task_id, TaskEvent.seq > after)
        .order_by(TaskEvent.seq)
        .limit(limit)
    )
    return list(session.scalars(query))


@dataclass(frozen=True)
class ListFilter:
    """What `GET /work` may filter on, and where the previous page ended."""

    project_id: str | None = None
    status: str | None = None
    type: str | None = None
    before: tuple[datetime, uuid.UUID] | None = None


def list_tasks(session: Session, where: ListFilter, *, limit: int) -> list[Task]:
    """Tasks newest first (keyset pagination on created_at, id)."""
    query = select(Task).order_by(Task.created_at.desc(), Task.id.desc()).limit(limit)
    if where.project_id is not None:
        query = query.where(Task.project_id == where.project_id)
    if where.status is not None:
        query = query.where(Task.status == where.status)
    if where.type is not None:
        query = query.where(Task.type == where.type)
    if where.before is not None:
        query = query.where(tuple_(Task.created_at, Task.id) < tuple_(*where.before))
    return list(session.scalars(query))


def count_by_status_and_type(session: Session) -> list[tuple[str, str, int]]:
    """How many tasks are in each (status, type)."""
    query = select(Task.status, Task.type, func.count()).group_by(Task.status, Task.type)
    return [(status, type_, count) for status, type_, count in session.execute(query)]


def count_failures_by_code(session: Session) -> list[tuple[str, int]]:
    """How many failed tasks carry each error code."""
    query = (
        select(Task.error_code, func.count())
        .where(Task.status == Status.FAILED.value)
        .group_by(Task.error_code)
    )
    return [(code or "UNKNOWN", count) for code, count in session.execute(query)]


def oldest_pending_created_at(session: Session) -> datetime | None:
    """When the longest-waiting pending task was created."""
    query = select(func.min(Task.created_at)).where(Task.status == Status.PENDING.value)
    return session.execute(query).scalar_one_or_none()


def lock_stale_running(session: Session, *, older_than: timedelta, limit: int) -> list[Task]:
    """Running tasks whose heartbeat is older than `older_than`, locked for rescue."""
    query = (
        select(Task)
        .where(
            Task.status == Status.RUNNING.value,
            Task.heartbeat_at < func.now() - older_than,
        )
        .order_by(Task.heartbeat_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(query))


def lock_undispatched(session: Session, *, older_than: timedelta, limit: int) -> list[Task]:
    """Pending tasks ready to run whose message never went out, or went out too long ago."""
    query = (
        select(Task)
        .where(
            Task.status == Status.PENDING.value,
            *claimable(),
            or_(
                Task.dispatched_at.is_(None),
                Task.dispatched_at < func.now() - older_than,
                and_(Task.not_before.is_not(None), Task.dispatched_at < Task.not_before),
            ),
        )
        .order_by(Task.priority.desc(), Task.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(query))


def mark_dispatched(
    session: Session, task_ids: Sequence[uuid.UUID], at: datetime | None = None
) -> None:
    """Stamp that a message for these pending tasks was published (to arrive `at`, or now)."""
    if task_ids:
        session.execute(
            update(Task)
            .where(Task.id.in_(task_ids), Task.status == Status.PENDING.value)
            .values(dispatched_at=at if at is not None else func.now())
        )


def clear_dispatched(session: Session, task_id: uuid.UUID) -> None:
    """Forget a publish that failed, so the outbox sends the task again soon."""
    session.execute(
        update(Task)
        .where(Task.id == task_id, Task.status == Status.PENDING.value)
        .values(dispatched_at=None)
    )


def delete_finished_batch(session: Session, *, older_than: timedelta, batch: int) -> int:
    """Delete up to `batch` terminal tasks finished before the cutoff (cascades to their logs)."""
    doomed = (
        select(Task.id)
        .where(
            Task.status.in_([s.value for s in TERMINAL]),
            Task.completed_at < func.now() - older_than,
        )
        .limit(batch)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    result = session.execute(delete(Task).where(Task.id.in_(doomed)))
    return int(result.rowcount)  # type: ignore[attr-defined]

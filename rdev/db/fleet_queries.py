"""Named queries of the fleet: workers, lanes, run-time settings, provider pauses, slot counts.

Like `rdev.db.queries`, every statement is built here and nowhere else.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from rdev.db import queries
from rdev.db.models import Attempt, Status, Task, TaskEvent
from rdev.db.models_fleet import Lane, ProviderPause, RuntimeSetting, Worker, WorkerStatus

# Workers


def upsert_worker(session: Session, values: dict[str, Any]) -> Worker:
    """Register a worker that (re)started: a fresh row, or its old one reset."""
    fresh = {
        **values,
        "status": WorkerStatus.IDLE.value,
        "started_at": func.now(),
        "last_seen": func.now(),
        "drain_requested_at": None,
        "stop_at": None,
        "stopped_at": None,
    }
    statement = (
        pg_insert(Worker)
        .values(**fresh)
        .on_conflict_do_update(index_elements=[Worker.id], set_=fresh)
        .returning(Worker)
    )
    return session.scalars(statement).one()


def set_worker_providers(session: Session, worker_id: str, providers: list[str]) -> None:
    """Record which agent providers a worker found available."""
    session.execute(update(Worker).where(Worker.id == worker_id).values(providers=providers))


def refresh_worker(session: Session, worker_id: str) -> Worker | None:
    """Stamp `last_seen`; idle or busy from its running tasks, unless draining."""
    busy = exists().where(Task.worker_id == worker_id, Task.status == Status.RUNNING.value)
    status = case(
        (Worker.status == WorkerStatus.DRAINING.value, Worker.status),
        (busy, WorkerStatus.BUSY.value),
        else_=WorkerStatus.IDLE.value,
    )
    statement = (
        update(Worker)
        .where(Worker.id == worker_id)
        .values(last_seen=func.now(), status=status)
        .returning(Worker)
        .execution_options(synchronize_session=False)
    )
    return session.scalars(statement).one_or_none()


def get_worker(session: Session, worker_id: str) -> Worker | None:
    """The worker with this id (node name)."""
    return session.get(Worker, worker_id, populate_existing=True)


def list_workers(session: Session, status: str | None = None) -> list[Worker]:
    """Registered workers, most recently seen first."""
    query = select(Worker).order_by(Worker.last_seen.desc(), Worker.id)
    if status is not None:
        query = query.where(Worker.status == status)
    return list(session.scalars(query))


def set_worker_draining(session: Session, worker_id: str) -> Worker | None:
    """Mark a worker draining (it consumes no more; its running tasks finish)."""
    statement = (
        update(Worker)
        .where(Worker.id == worker_id)
        .values(
            status=WorkerStatus.DRAINING.value,
            drain_requested_at=func.coalesce(Worker.drain_requested_at, func.now()),
        )
        .returning(Worker)
        .execution_options(synchronize_session=False)
    )
    return session.scalars(statement).one_or_none()


def set_worker_stop_at(session: Session, worker_id: str, grace: timedelta) -> None:
    """A warm shutdown began: running tasks of this worker must stop `grace` from now."""
    session.execute(
        update(Worker)
        .where(Worker.id == worker_id)
        .values(
            status=WorkerStatus.DRAINING.value,
            stop_at=func.coalesce(Worker.stop_at, func.now() + grace),
        )
    )


def set_worker_stopped(session: Session, worker_id: str) -> None:
    """The worker process exited cleanly."""
    session.execute(
        update(Worker)
        .where(Worker.id == worker_id)
        .values(status=WorkerStatus.OFFLINE.value, stopped_at=func.now(), last_seen=func.now())
    )


def worker_must_stop(session: Session, worker_id: str) -> bool:
    """True once the worker's shutdown grace period has run out."""
    query = select(Worker.id).where(Worker.id == worker_id, Worker.stop_at <= func.now())
    return session.execute(query).first() is not None


def mark_workers_offline(session: Session, *, older_than: timedelta) -> list[str]:
    """Workers not seen for `older_than` become offline; their ids."""
    statement = (
        update(Worker)
        .where(
            Worker.status != WorkerStatus.OFFLINE.value,
            Worker.last_seen < func.now() - older_than,
        )
        .values(status=WorkerStatus.OFFLINE.value)
        .returning(Worker.id)
    )
    return list(session.scalars(statement))


def running_tasks_of(session: Session, worker_id: str) -> list[Task]:
    """The tasks a worker is running now."""
    query = (
        select(Task)
        .where(Task.worker_id == worker_id, Task.status == Status.RUNNING.value)
        .order_by(Task.started_at)
    )
    return list(session.scalars(query))


def count_running_by_worker(session: Session) -> dict[str, int]:
    """How many tasks each worker is running."""
    query = (
        select(Task.worker_id, func.count())
        .where(Task.status == Status.RUNNING.value, Task.worker_id.is_not(None))
        .group_by(Task.worker_id)
    )
    return {str(worker): count for worker, count in session.execute(query)}


def count_workers_by_status(session: Session) -> dict[str, int]:
    """How many registered workers are in each status."""
    query = select(Worker.status, func.count()).group_by(Worker.status)
    return {status: count for status, count in session.execute(query)}


# Lanes and run-time settings


def get_lane(session: Session, type_: str) -> Lane | None:
    """The run-time limits of a task type, if an operator set any."""
    return session.get(Lane, type_, populate_existing=True)


def list_lanes(session: Session) -> list[Lane]:
    """Every lane an operator configured."""
    return list(session.scalars(select(Lane).order_by(Lane.type)))


def upsert_lane(session: Session, type_: str, values: dict[str, int | None]) -> Lane:
    """Set some of a lane's limits (None: back to the configured default)."""
    changes = {**values, "updated_at": func.now()}
    statement = (
        pg_insert(Lane)
        .values(type=type_, **changes)
        .on_conflict_do_update(index_elements=[Lane.type], set_=changes)
        .returning(Lane)
    )
    return session.scalars(statement).one()


def get_setting(session: Session, name: str) -> Any:
    """A run-time setting's value, or None when unset."""
    row = session.get(RuntimeSetting, name, populate_existing=True)
    return None if row is None else row.value.get("value")


def put_setting(session: Session, name: str, value: Any) -> None:
    """Set a run-time setting."""
    changes = {"value": {"value": value}, "updated_at": func.now()}
    session.execute(
        pg_insert(RuntimeSetting)
        .values(name=name, **changes)
        .on_conflict_do_update(index_elements=[RuntimeSetting.name], set_=changes)
    )


# Slots


def lock_slot(session: Session, key: str) -> None:
    """Serialize claims on one slot key until the transaction ends (advisory lock)."""
    session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))


def count_running(session: Session, type_: str, project_id: str | None = None) -> int:
    """Running tasks of a type (in one project, when given)."""
    query = select(func.count()).where(Task.type == type_, Task.status == Status.RUNNING.value)
    if project_id is not None:
        query = query.where(Task.project_id == project_id)
    return int(session.execute(query).scalar_one())


def park(session: Session, task_id: Any, *, until: datetime | None) -> None:
    """A pending task that may not start yet: wait for `until` (outbox), or for a wake-up."""
    values: dict[str, Any] = {"dispatched_at": func.now()}
    if until is not None:
        values = {"not_before": until, "dispatched_at": None}
    session.execute(
        update(Task)
        .where(Task.id == task_id, Task.status == Status.PENDING.value)
        .values(**values)
    )


def waiting_tasks(
    session: Session, type_: str, project_id: str | None, limit: int
) -> list[Task]:
    """Pending tasks of a type (in one project, when given) that could start now, first first."""
    query = (
        select(Task)
        .where(Task.type == type_, Task.status == Status.PENDING.value, *queries.claimable())
        .order_by(Task.priority.desc(), Task.created_at)
        .limit(limit)
    )
    if project_id is not None:
        query = query.where(Task.project_id == project_id)
    return list(session.scalars(query))


# Provider pauses


def pause_provider(
    session: Session, provider: str, *, until: datetime, reason: str, task_id: str
) -> ProviderPause:
    """Pause a provider until `until`, keeping a later pause already in place."""
    values = {"until": until, "reason": reason, "task_id": task_id, "created_at": func.now()}
    statement = (
        pg_insert(ProviderPause)
        .values(provider=provider, **values)
        .on_conflict_do_update(
            index_elements=[ProviderPause.provider],
            set_=values,
            where=ProviderPause.until < until,
        )
        .returning(ProviderPause)
    )
    paused = session.scalars(statement).one_or_none()
    return paused or session.get_one(ProviderPause, provider, populate_existing=True)


def active_pause(session: Session, provider: str) -> ProviderPause | None:
    """The provider's pause if it has not ended."""
    query = select(ProviderPause).where(
        ProviderPause.provider == provider, ProviderPause.until > func.now()
    )
    return session.scalars(query).one_or_none()


def active_pauses(session: Session) -> list[ProviderPause]:
    """Every pause still in force."""
    query = select(ProviderPause).where(ProviderPause.until > func.now())
    return list(session.scalars(query.order_by(ProviderPause.provider)))


def delete_ended_pauses(session: Session) -> int:
    """Forget pauses that are over."""
    result = session.execute(delete(ProviderPause).where(ProviderPause.until <= func.now()))
    return int(result.rowcount)  # type: ignore[attr-defined]


# Metrics


def attempt_durations(
    session: Session, buckets: tuple[float, ...]
) -> list[tuple[str, list[int], float, int]]:
    """Per task type: attempts that ended completed counted under each bucket bound, sum, count."""
    seconds = func.extract("epoch", Attempt.ended_at - Attempt.started_at)
    columns = [func.count().filter(seconds <= bound) for bound in buckets]
    query = (
        select(Task.type, *columns, func.coalesce(func.sum(seconds), 0), func.count())
        .join(Task, Task.id == Attempt.task_id)
        .where(Attempt.ended_at.is_not(None), Attempt.outcome == "completed")
        .group_by(Task.type)
    )
    return [
        (row[0], [int(n) for n in row[1 : 1 + len(buckets)]], float(row[-2]), int(row[-1]))
        for row in session.execute(query)
    ]


def count_rescues(session: Session) -> int:
    """Attempts lost with their worker: rescued to pending, or failed STALE_WORKER."""
    rescued = select(func.count()).where(TaskEvent.kind == "rescued").scalar_subquery()
    stale = select(func.count()).where(Attempt.outcome == "stale").scalar_subquery()
    return int(session.execute(select(rescued + stale)).scalar_one())


def count_pending_by_type(session: Session) -> dict[str, int]:
    """Pending tasks of each type (the queue's depth)."""
    query = (
        select(Task.type, func.count())
        .where(Task.status == Status.PENDING.value)
        .group_by(Task.type)
    )
    return {type_: count for type_, count in session.execute(query)}

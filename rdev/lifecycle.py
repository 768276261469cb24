"""The task life cycle: the only code that changes a task's status.

    pending -> running -> completed | failed
    pending -> cancelled            running -> cancelled (cooperative)
    running -> pending              (retry with backoff, rescue, release on shutdown)

Every change is a guarded UPDATE (`WHERE status = expected AND attempt = expected`), recorded in
the attempt's audit row and in the task's event log, all in the caller's transaction. `attempt`
is the fencing token: claim increments it, so a write from an older attempt (a zombie worker, a
duplicated message) matches no row and is refused.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.orm import Session

from rdev import admission, callbacks, codes, errors, handlers
from rdev.config import Settings
from rdev.db import queries
from rdev.db.models import TERMINAL, Outcome, Status, Task, TaskEvent

ALLOWED: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.RUNNING, Status.CANCELLED}),
    Status.RUNNING: frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED, Status.PENDING}),
    Status.COMPLETED: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELLED: frozenset(),
}

MAX_ERROR_CHARS = 4000
#: every status change reserves the sequence number of the event that logs it, in one UPDATE
NEXT_EVENT = {"event_seq": Task.event_seq + 1}


@dataclass(frozen=True)
class NewTask:
    """A validated enqueue request."""

    project_id: str
    type: str
    spec: dict[str, Any]
    priority: int
    max_retries: int
    timeout_s: int
    callback_url: str | None = None
    caller_id: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None


@dataclass(frozen=True)
class Beat:
    """What a heartbeat learned: whether the attempt is still current, and if cancel was asked."""

    current: bool
    cancel_requested: bool


def enqueue(session: Session, new: NewTask) -> tuple[Task, bool]:
    """Store a task (stamped as dispatched: the caller publishes right after commit).

    Returns the task and whether it was created; a replayed Idempotency-Key returns the first
    task, or raises `IdempotencyConflict` when the replay asked for something else.
    """
    values = {**new.__dict__, "id": uuid.uuid4(), "dispatched_at": func.now(), "event_seq": 1}
    task = queries.insert_task(session, values)
    if task is None:
        assert new.idempotency_key is not None
        first = queries.get_task_by_idempotency_key(session, new.idempotency_key)
        assert first is not None, "a conflicting insert implies the key exists"
        if first.request_hash != new.request_hash:
            raise errors.IdempotencyConflict(new.idempotency_key, str(first.id))
        return first, False
    _log(session, task, "enqueued", {"type": task.type, "priority": task.priority})
    return task, True


def claim(
    session: Session, task_id: uuid.UUID, worker_id: str, settings: Settings | None = None
) -> Task | None:
    """Start a new attempt of a pending task; None when the task is not claimable.

    With `settings`, the task must also get a slot of its lane and project and its provider
    must not be paused (`admission`); a task that must wait stays pending, parked.
    """
    if settings is not None and not admission.admit(session, task_id, settings):
        return None
    task = _transition(
        session,
        task_id,
        Status.PENDING,
        Status.RUNNING,
        extra=queries.claimable(),
        values={
            "attempt": Task.attempt + 1,
            "worker_id": worker_id,
            "started_at": func.now(),
            "heartbeat_at": func.now(),
            "error": None,
            "error_code": None,
        },
    )
    if task is not None:
        queries.insert_attempt(session, task)
        _log(session, task, "claimed", {"worker_id": worker_id, "attempt": task.attempt})
    return task


def heartbeat(session: Session, task_id: uuid.UUID, attempt: int) -> Beat:
    """Refresh a running attempt's heartbeat and read whether cancel was requested."""
    task = queries.heartbeat(session, task_id, attempt)
    if task is None:
        return Beat(current=False, cancel_requested=False)
    return Beat(current=True, cancel_requested=task.cancel_requested_at is not None)


def complete(
    session: Session, task_id: uuid.UUID, attempt: int, result: dict[str, Any]
) -> Task:
    """End the current attempt successfully with its result."""
    task = _finish(session, task_id, attempt, Status.COMPLETED, result=result)
    queries.close_attempt(session, task_id, attempt, outcome=Outcome.COMPLETED)
    _log(session, task, "completed", {})
    return task


def fail(
    session: Session,
    task_id: uuid.UUID,
    attempt: int,
    failure: errors.TaskFailure,
    settings: Settings,
) -> Task:
    """End the current attempt with an error code: back to pending with backoff, or failed."""
    current = _current(session, task_id, attempt)
    message = failure.message[:MAX_ERROR_CHARS]
    retry = codes.is_retryable(failure.code) and current.retry_count < current.max_retries
    admission.pause_after(session, current, failure, settings)
    if retry:
        delay = backoff_s(failure, current.retry_count, settings)
        task = _requeue(session, current, delay=delay, count_retry=True)
        outcome, data = Outcome.RETRY, {"retry_in_s": delay}
    else:
        task = _finish(
            session, task_id, attempt, Status.FAILED, error=message, error_code=failure.code
        )
        outcome, data = Outcome.FAILED, {}
    queries.close_attempt(
        session, task_id, attempt, outcome=outcome, error_code=failure.code, error=message
    )
    kind = "retry_scheduled" if retry else "failed"
    _log(session, task, kind, {"error_code": failure.code, "error": message, **data})
    return task


def cancel(session: Session, task_id: uuid.UUID) -> Task:
    """Cancel a pending task at once, or ask the worker of a running one to stop."""
    task = _get(session, task_id)
    if task.status == Status.PENDING:
        done = _transition(
            session, task_id, Status.PENDING, Status.CANCELLED,
            values={"completed_at": func.now(), "cancel_requested_at": func.now()},
        )
        if done is not None:
            _log(session, done, "cancelled", {"while": "pending"})
            callbacks.record(session, done)
            return done
    elif task.status == Status.RUNNING:
        asked = queries.update_task(
            session, task_id, status=[Status.RUNNING],
            values={
                "cancel_requested_at": func.coalesce(Task.cancel_requested_at, func.now()),
                **NEXT_EVENT,
            },
        )
        if asked is not None:
            _log(session, asked, "cancel_requested", {})
            return asked
    return _refuse(session, task_id, "cancel")


def finish_cancelled(session: Session, task_id: uuid.UUID, attempt: int) -> Task:
    """Record that a running attempt stopped because cancel was requested."""
    task = _finish(session, task_id, attempt, Status.CANCELLED)
    queries.close_attempt(session, task_id, attempt, outcome=Outcome.CANCELLED)
    _log(session, task, "cancelled", {"while": "running"})
    return task


def release(session: Session, task_id: uuid.UUID, attempt: int, reason: str) -> Task:
    """Hand a running attempt back to pending without using a retry (worker shutting down)."""
    task = _requeue(session, _current(session, task_id, attempt), delay=0, count_retry=False)
    queries.close_attempt(session, task_id, attempt, outcome=Outcome.RESCUED, error=reason)
    _log(session, task, "released", {"reason": reason})
    return task


def rescue_stale(session: Session, settings: Settings, limit: int = 100) -> list[Task]:
    """Rescue running tasks whose worker stopped heartbeating: pending again, or STALE_WORKER.

    A type with side effects (deploy) never runs a lost attempt again: it fails at once.
    """
    rescued = []
    older_than = timedelta(seconds=settings.stale_after_s)
    for stale in queries.lock_stale_running(session, older_than=older_than, limit=limit):
        attempt = stale.attempt
        note = f"worker {stale.worker_id} stopped heartbeating during attempt {attempt}"
        if _has_side_effects(stale.type):
            note += "; its type has side effects, so it is not run again"
        if stale.retry_count < stale.max_retries and not _has_side_effects(stale.type):
            task = _requeue(session, stale, delay=0, count_retry=True)
            queries.close_attempt(session, task.id, attempt, outcome=Outcome.RESCUED, error=note)
            _log(session, task, "rescued", {"attempt": attempt, "worker_id": stale.worker_id})
        else:
            task = _finish(
                session, stale.id, attempt, Status.FAILED,
                error=note, error_code=codes.ErrorCode.STALE_WORKER,
            )
            queries.close_attempt(
                session, task.id, attempt, outcome=Outcome.STALE,
                error_code=codes.ErrorCode.STALE_WORKER, error=note,
            )
            _log(session, task, "failed", {"error_code": codes.ErrorCode.STALE_WORKER})
        rescued.append(task)
    return rescued


def backoff_s(failure: errors.TaskFailure, retry_count: int, settings: Settings) -> float:
    """How long a retryable failure waits: the provider's retry-after, else exponential."""
    if failure.retry_after_s is not None:
        return max(0.0, failure.retry_after_s)
    base: float = getattr(settings, codes.RETRY_POLICIES[failure.code].base_backoff)
    return float(min(settings.max_backoff_s, base * 2**retry_count))


def _has_side_effects(type_: str) -> bool:
    try:
        return handlers.get(type_).side_effects
    except errors.InvalidSpec:
        return False  # a type this process does not know keeps the default: requeued


def is_terminal(task: Task) -> bool:
    """True once a task can change no more."""
    return Status(task.status) in TERMINAL


def _requeue(session: Session, task: Task, *, delay: float, count_retry: bool) -> Task:
    values: dict[str, Any] = {
        "worker_id": None,
        "heartbeat_at": None,
        "error_code": None,
        "not_before": func.now() + timedelta(seconds=delay),
        "dispatched_at": None,
    }
    if count_retry:
        values["retry_count"] = Task.retry_count + 1
    requeued = _transition(
        session, task.id, Status.RUNNING, Status.PENDING, attempt=task.attempt, values=values
    )
    if requeued is None:
        raise errors.StaleAttempt(str(task.id), task.attempt)
    return requeued


def _finish(
    session: Session, task_id: uuid.UUID, attempt: int, to: Status, **values: Any
) -> Task:
    values.setdefault("error", None)
    values.setdefault("error_code", None)
    task = _transition(
        session, task_id, Status.RUNNING, to, attempt=attempt,
        values={**values, "completed_at": func.now(), "heartbeat_at": None},
    )
    if task is None:
        raise errors.StaleAttempt(str(task_id), attempt)
    callbacks.record(session, task)  # the callback outbox row commits with the transition
    return task


def _transition(
    session: Session,
    task_id: uuid.UUID,
    frm: Status,
    to: Status,
    *,
    values: dict[str, Any],
    attempt: int | None = None,
    extra: list[Any] | None = None,
) -> Task | None:
    if to not in ALLOWED[frm]:
        raise errors.InvalidTransition(str(task_id), frm.value, f"move to {to.value}")
    return queries.update_task(
        session, task_id, status=[frm], attempt=attempt, extra=extra or [],
        values={**values, "status": to.value, **NEXT_EVENT},
    )


def _current(session: Session, task_id: uuid.UUID, attempt: int) -> Task:
    task = queries.get_task(session, task_id)
    if task is None or task.status != Status.RUNNING or task.attempt != attempt:
        raise errors.StaleAttempt(str(task_id), attempt)
    return task


def _get(session: Session, task_id: uuid.UUID) -> Task:
    task = queries.get_task(session, task_id)
    if task is None:
        raise errors.TaskNotFound(str(task_id))
    return task


def _refuse(session: Session, task_id: uuid.UUID, action: str) -> Task:
    raise errors.InvalidTransition(str(task_id), _get(session, task_id).status, action)


def _log(session: Session, task: Task, kind: str, data: dict[str, Any]) -> TaskEvent:
    """Log the change just made to `task`, which reserved the event's sequence number."""
    return queries.insert_event(session, task, kind, data)

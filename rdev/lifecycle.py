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
    """Store a task, stamped as dispatched: the caller publishes it right after commit.

    Returns the task and whether it was created; a replayed Idempotency-Key returns the first
    task, or raises `IdempotencyConflict` when the replay asked for something else.
    """
    values = {**new.__dict__, "id": uuid.uuid4()}
    task = queries.insert_task(session, values)
    if task is None:
        assert new.idempotency_key is not None
        first = queries.get_task_by_idempotency_key(session, new.idempotency_key)
        assert first is not None, "a conflicting insert implies the key exists"
        if first.request_hash != new.request_hash:
            raise errors.IdempotencyConflict(new.idempotency_key, str(first.id))
        return first, False
    return task, True


def claim(
    session: Session, task_id: uuid.UUID, worker_id: str, settings: Settings | None = None
) -> Task | None:
    """Start a new attempt of a pending task; None when the task is not claimable.

    With `settings`, the task must also get a slot of its lane and project and its provider
    must not be paused (`admission`); a task that must wait stays pending, parked. The claim
    must be the first write of its transaction: a refused claim rolls the transaction back.
    """
    task = queries.claim_task(session, task_id, worker_id)
    if task is None or settings is None:
        return task
    verdict = admission.verdict_for_claimed(session, task, settings)
    if verdict.admitted:
        return task
    session.rollback()  # undoes the claim, this transaction's only write
    admission.park(session, task_id, verdict)
    return None


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
    return _finish(
        session, task_id, attempt, Status.COMPLETED,
        outcome=Outcome.COMPLETED, event=("completed", {}), result=result,
    )


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
    logged = {"error_code": failure.code, "error": message}
    if not retry:
        return _finish(
            session, task_id, attempt, Status.FAILED,
            outcome=Outcome.FAILED, event=("failed", logged),
            error=message, error_code=failure.code,
        )
    delay = backoff_s(failure, current.retry_count, settings)
    task = _requeue(session, current, delay=delay, count_retry=True)
    queries.close_attempt(
        session, task_id, attempt, outcome=Outcome.RETRY, error_code=failure.code, error=message
    )
    _log(session, task, "retry_scheduled", {**logged, "retry_in_s": delay})
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
    return _finish(
        session, task_id, attempt, Status.CANCELLED, outcome=Outcome.CANCELLED,
        event=("cancelled", {"while": "running"}),
    )


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
            code = codes.ErrorCode.STALE_WORKER
            task = _finish(
                session, stale.id, attempt, Status.FAILED, outcome=Outcome.STALE,
                event=("failed", {"error_code": code}), error=note, error_code=code,
            )
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
    session: Session,
    task_id: uuid.UUID,
    attempt: int,
    to: Status,
    *,
    outcome: Outcome,
    event: tuple[str, dict[str, Any]],
    **values: Any,
) -> Task:
    """End the current attempt: task, audit row and event log in one statement."""
    if to not in ALLOWED[Status.RUNNING] or to == Status.PENDING:
        raise errors.InvalidTransition(str(task_id), Status.RUNNING.value, f"finish as {to}")
    task = queries.finish_attempt(
        session, task_id, attempt, status=to.value, outcome=outcome.value, event=event, **values
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

"""Executing one attempt on a worker: claim, run the handler beside a heartbeat, record the end.

The Celery task is a thin shell around `run()`. A message for a task that cannot be claimed is
dropped; a handler's end is written with the attempt number as fencing token, so an attempt
that lost its claim (its worker was presumed dead) never overwrites the current one.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from celery.exceptions import SoftTimeLimitExceeded

from rdev import admission, callbacks, dispatch, errors, handlers, lifecycle
from rdev.codes import ErrorCode
from rdev.context import Stopped, StopReason, TaskContext
from rdev.db import fleet_queries, queries
from rdev.db.models import Task
from rdev.runtime import Runtime

log = logging.getLogger(__name__)
T = TypeVar("T")

RECORD_RETRY_DELAYS_S = (0.5, 1, 2, 4, 8, 15, 30)


@dataclass(frozen=True)
class Outcome:
    """How a handler's run ended, before it is recorded."""

    result: dict[str, Any] | None = None
    failure: errors.TaskFailure | None = None
    stop: StopReason | None = None


def run(runtime: Runtime, task_id: uuid.UUID, worker_id: str) -> str:
    """Execute the task if it can be claimed; returns what happened, for the worker's log."""
    task = _with_db_retry(lambda: _claim(runtime, task_id, worker_id))
    if task is None:
        return "dropped: not claimable"
    ctx = _context(runtime, task, worker_id)
    heartbeat = Heartbeat(runtime, ctx)
    heartbeat.start()
    try:
        outcome = execute_handler(ctx)
    finally:
        heartbeat.finish()
    return record(runtime, ctx, outcome)


def _claim(runtime: Runtime, task_id: uuid.UUID, worker_id: str) -> Task | None:
    with runtime.db.session() as session:
        return lifecycle.claim(session, task_id, worker_id, runtime.settings)


def execute_handler(ctx: TaskContext) -> Outcome:
    """Run the type's handler and turn whatever it does into an `Outcome`."""
    handler = handlers.get(ctx.type).handler
    try:
        if handler is None:
            raise errors.TaskFailure(
                ErrorCode.AGENT_ERROR, f"this worker has no handler for {ctx.type!r} tasks"
            )
        return Outcome(result=handler(ctx))
    except Exception as exc:
        return _outcome_of_error(ctx, exc)


def _outcome_of_error(ctx: TaskContext, exc: Exception) -> Outcome:
    """A handler's exception as an outcome; a stop signal explains whatever followed it."""
    if isinstance(exc, Stopped):
        return _stopped(exc.reason)
    if isinstance(exc, SoftTimeLimitExceeded):
        return _stopped(StopReason.TIMEOUT)
    if ctx.stop_reason is not None:
        return _stopped(ctx.stop_reason)
    if isinstance(exc, errors.TaskFailure):
        return Outcome(failure=exc)
    if isinstance(exc, errors.InvalidRequest):
        return Outcome(failure=errors.TaskFailure(ErrorCode.INVALID_SPEC, str(exc)))
    log.exception("handler for task %s failed", ctx.task_id, exc_info=exc)
    message = f"{type(exc).__name__}: {exc}"
    return Outcome(failure=errors.TaskFailure(ErrorCode.AGENT_ERROR, message))


def record(runtime: Runtime, ctx: TaskContext, outcome: Outcome) -> str:
    """Write the attempt's end (retrying while PostgreSQL is away); returns a summary."""
    if outcome.stop == StopReason.FENCED:
        return "abandoned: attempt fenced off"
    try:
        task = _with_db_retry(lambda: _write_outcome(runtime, ctx, outcome))
    except errors.StaleAttempt:
        return "abandoned: attempt no longer current"
    follow_up(runtime, task)
    return f"{task.status} {task.error_code or ''}".strip()


def follow_up(runtime: Runtime, task: Task) -> None:
    """What an attempt's committed end sets in motion (from a worker, or from beat's rescue)."""
    dispatch.send_requeued(runtime, task)  # a retry with a short wait goes out now
    admission.wake_safely(runtime, task)  # the attempt's slot is free for a waiting task
    callbacks.send_for(runtime, task)  # a terminal task's callback is delivered at once


def _write_outcome(runtime: Runtime, ctx: TaskContext, outcome: Outcome) -> Task:
    with runtime.db.session() as session:
        if outcome.stop == StopReason.CANCEL:
            return lifecycle.finish_cancelled(session, ctx.task_id, ctx.attempt)
        if outcome.stop == StopReason.SHUTDOWN:
            return lifecycle.release(session, ctx.task_id, ctx.attempt, "worker shut down")
        if outcome.failure is not None:
            return lifecycle.fail(
                session, ctx.task_id, ctx.attempt, outcome.failure, runtime.settings
            )
        return lifecycle.complete(session, ctx.task_id, ctx.attempt, outcome.result or {})


def _stopped(reason: StopReason) -> Outcome:
    if reason == StopReason.TIMEOUT:
        failure = errors.TaskFailure(ErrorCode.TIMEOUT, "the task's time limit was reached")
        return Outcome(failure=failure)
    return Outcome(stop=reason)


def _context(runtime: Runtime, task: Task, worker_id: str) -> TaskContext:
    def sink(kind: str, data: dict[str, Any]) -> bool:
        with runtime.db.session() as session:
            event = queries.append_event(session, task.id, kind, data, attempt=task.attempt)
        return event is not None

    timeout = min(task.timeout_s, runtime.settings.max_task_timeout_s)
    return TaskContext(
        task_id=task.id, attempt=task.attempt, project_id=task.project_id, type=task.type,
        spec=task.spec, timeout_s=timeout, settings=runtime.settings, worker_id=worker_id,
        sink=sink,
    )


def _with_db_retry(write: Callable[[], T]) -> T:
    for delay in RECORD_RETRY_DELAYS_S:
        try:
            return write()
        except errors.ServiceUnavailable as exc:
            log.warning("recording the attempt failed, retrying in %ss: %s", delay, exc)
            time.sleep(delay)
    return write()


class Heartbeat(threading.Thread):
    """Refreshes the attempt's heartbeat and stops it on cancel, time limit or fencing."""

    def __init__(self, runtime: Runtime, ctx: TaskContext) -> None:
        super().__init__(name=f"heartbeat-{ctx.task_id}", daemon=True)
        self.runtime = runtime
        self.ctx = ctx
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self._next_wait()):
            if self.ctx.remaining_s() <= 0:
                self.ctx.stop(StopReason.TIMEOUT)
            self._beat()

    def _next_wait(self) -> float:
        interval = self.runtime.settings.heartbeat_s
        remaining = self.ctx.remaining_s()
        return min(interval, remaining) if remaining > 0 else interval

    def _beat(self) -> None:
        try:
            with self.runtime.db.session() as session:
                beat = lifecycle.heartbeat(session, self.ctx.task_id, self.ctx.attempt)
                # A warm shutdown's grace period ran out: hand the task back (release).
                stopping = fleet_queries.worker_must_stop(session, self.ctx.worker_id)
        except errors.ServiceUnavailable as exc:
            log.warning("heartbeat of task %s failed: %s", self.ctx.task_id, exc)
            return
        if not beat.current:
            self.ctx.stop(StopReason.FENCED)
        elif beat.cancel_requested:
            self.ctx.stop(StopReason.CANCEL)
        elif stopping:
            self.ctx.stop(StopReason.SHUTDOWN)

    def finish(self) -> None:
        """Stop beating and wait for the thread."""
        self._done.set()
        self.join(timeout=10)

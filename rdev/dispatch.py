"""Publishing task messages: right after enqueue, after a retry, and from the outbox.

A message is only a hint that a task may be ready; PostgreSQL decides. Publishing happens
after the task's row is committed. When the broker is unreachable the row stays pending with
no `dispatched_at`, and beat's outbox pass publishes it later.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from kombu.exceptions import KombuError

from rdev.db import queries
from rdev.db.models import Status, Task
from rdev.runtime import Runtime

log = logging.getLogger(__name__)

EXECUTE = "rdev.execute"
OUTBOX_BATCH = 500


def publish(runtime: Runtime, task: Task, countdown: float | None = None) -> bool:
    """Send the execute message for `task`; False when the broker refused or is down."""
    settings = runtime.settings
    grace = max(5.0, settings.heartbeat_s)
    try:
        runtime.celery.send_task(
            EXECUTE,
            args=[str(task.id)],
            queue=settings.queue,
            # Redis pops the lowest number first; rdev's 9 is the most urgent.
            priority=9 - task.priority,
            countdown=countdown,
            soft_time_limit=task.timeout_s + grace,
            time_limit=task.timeout_s + 2 * grace,
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0.1, "interval_step": 0.2},
        )
    except (KombuError, OSError) as exc:
        log.warning("publishing task %s failed, the outbox will retry: %s", task.id, exc)
        return False
    return True


def send_new(runtime: Runtime, task: Task) -> bool:
    """Publish a just-enqueued task (stamped dispatched at insert); un-stamp it on failure."""
    if publish(runtime, task):
        return True
    with runtime.db.session() as session:
        queries.clear_dispatched(session, task.id)
    return False


def send_requeued(runtime: Runtime, task: Task) -> None:
    """Publish a task that went back to pending, unless its wait is long (beat sends those)."""
    if task.status != Status.PENDING:
        return
    wait = _seconds_until(task.not_before)
    if wait > runtime.settings.max_eta_s:
        return
    if publish(runtime, task, countdown=wait or None):
        with runtime.db.session() as session:
            # Stamped with the arrival time, so the outbox does not send it a second time.
            queries.mark_dispatched(session, [task.id], at=task.not_before)


def redispatch_due(runtime: Runtime) -> int:
    """The outbox pass: publish pending tasks whose message is missing or too old."""
    older_than = timedelta(seconds=runtime.settings.redispatch_after_s)
    sent: list[uuid.UUID] = []
    with runtime.db.session() as session:
        for task in queries.lock_undispatched(session, older_than=older_than, limit=OUTBOX_BATCH):
            if not publish(runtime, task):
                break
            sent.append(task.id)
        queries.mark_dispatched(session, sent)
    if sent:
        log.info("outbox published %d pending task(s)", len(sent))
    return len(sent)


def _seconds_until(moment: datetime | None) -> float:
    if moment is None:
        return 0.0
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())

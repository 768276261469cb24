"""Whether a pending task may start now: lane and project slots, and provider pauses.

Claim asks `verdict_for_claimed()` right after its guarded UPDATE, in the same transaction. A
limited slot is guarded by a transaction-scoped advisory lock on its key (the lane first, then
the project, always in that order), and the running tasks are counted after the lock is held:
two workers claiming the last slot serialize on the lock, the second counts the first's
committed claim besides its own, and is refused (its claim is rolled back).

A refused task stays pending and is parked: behind a provider pause it waits for the pause's
end (the outbox publishes it then); behind a full slot it waits for `wake()`, which the worker
calls after any of its tasks leaves running, so a freed slot is taken without waiting for beat.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from rdev import dispatch, errors, handlers, lanes
from rdev.agents import registry
from rdev.codes import ErrorCode
from rdev.config import Settings
from rdev.db import fleet_queries, queries
from rdev.db.models import Task
from rdev.runtime import Runtime

log = logging.getLogger(__name__)

#: waiting tasks published per freed slot; more only make duplicate messages
WAKE_BATCH = 2


@dataclass(frozen=True)
class Verdict:
    """Why a task may not start now (None: it may), and until when, if known."""

    reason: str | None = None
    until: datetime | None = None

    @property
    def admitted(self) -> bool:
        """True when the task may start."""
        return self.reason is None


def verdict_for_claimed(session: Session, task: Task, settings: Settings) -> Verdict:
    """Whether a task this transaction just claimed may keep its slot.

    The slot's advisory lock is taken after the claim's UPDATE, so the running count (read
    once the lock is held) includes every committed claim and this one.
    """
    provider = provider_of(task.type, task.spec, settings)
    if provider is not None:
        pause = fleet_queries.active_pause(session, provider)
        if pause is not None:
            return Verdict(f"provider {provider} paused", until=pause.until)
    limits = lanes.limits(session, task.type, settings)
    if limits.lane is not None:
        fleet_queries.lock_slot(session, f"lane:{task.type}")
        if fleet_queries.count_running(session, task.type) > limits.lane:
            return Verdict(f"lane {task.type} full ({limits.lane})")
    if limits.project is not None:
        fleet_queries.lock_slot(session, f"project:{task.type}:{task.project_id}")
        if fleet_queries.count_running(session, task.type, task.project_id) > limits.project:
            return Verdict(f"project {task.project_id} full for {task.type} ({limits.project})")
    return Verdict()


def park(session: Session, task_id: uuid.UUID, verdict: Verdict) -> None:
    """Leave a pending task waiting: for the verdict's time (outbox), or for a wake-up."""
    fleet_queries.park(session, task_id, until=verdict.until)
    log.info("task %s waits: %s", task_id, verdict.reason)


def provider_of(type_: str, spec: dict[str, Any], settings: Settings) -> str | None:
    """The agent provider a task runs on; None for types that run no agent."""
    try:
        fields = handlers.get(type_).spec_model.model_fields
    except errors.InvalidSpec:
        return None
    if "agent" not in fields:
        return None
    return str(spec.get("agent") or registry.default_name(settings))


def pause_after(
    session: Session, task: Task, failure: errors.TaskFailure, settings: Settings
) -> None:
    """A RATE_LIMITED failure with a known reset time pauses the task's provider until then."""
    if failure.code != ErrorCode.RATE_LIMITED or failure.retry_after_s is None:
        return
    provider = provider_of(task.type, task.spec, settings)
    if provider is None or failure.retry_after_s <= 0:
        return
    wait = timedelta(seconds=min(failure.retry_after_s, settings.provider_pause_max_s))
    until = queries.now(session) + wait
    fleet_queries.pause_provider(
        session, provider, until=until, reason=failure.message[:500], task_id=str(task.id)
    )
    log.warning("provider %s paused until %s (task %s)", provider, until, task.id)


def wake(runtime: Runtime, type_: str, project_id: str) -> int:
    """A slot of (type, project) freed: publish the tasks waiting for it; how many."""
    with runtime.db.session() as session:
        limits = lanes.limits(session, type_, runtime.settings)
        if not limits.any:
            return 0
        waiting = fleet_queries.waiting_tasks(session, type_, project_id, WAKE_BATCH)
        if limits.lane is not None:
            waiting += fleet_queries.waiting_tasks(session, type_, None, WAKE_BATCH)
    unique = list({task.id: task for task in waiting}.values())
    sent = [task.id for task in unique if dispatch.publish(runtime, task)]
    if sent:
        with runtime.db.session() as session:
            queries.mark_dispatched(session, sent)
    return len(sent)


def wake_safely(runtime: Runtime, task: Task) -> None:
    """`wake()` for a task that just left running; a failure only delays the wake to beat."""
    try:
        wake(runtime, task.type, task.project_id)
    except errors.ServiceUnavailable as exc:
        log.warning("waking tasks waiting behind %s failed (the outbox will): %s", task.id, exc)


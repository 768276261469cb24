"""The life cycle against real PostgreSQL: transitions, fencing, retries, rescue, cleanup."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text, update

from rdev import errors, lifecycle
from rdev.codes import ErrorCode
from rdev.db import queries
from rdev.db.models import Task
from rdev.runtime import Runtime

pytestmark = pytest.mark.integration


def new_task(**changes: object) -> lifecycle.NewTask:
    fields: dict = {"project_id": "proj", "type": "probe", "spec": {}, "priority": 5,
                    "max_retries": 2, "timeout_s": 60, **changes}
    return lifecycle.NewTask(**fields)


def enqueue(runtime: Runtime, **changes: object) -> Task:
    with runtime.db.session() as session:
        task, created = lifecycle.enqueue(session, new_task(**changes))
    assert created
    return task


def claim(runtime: Runtime, task: Task, worker: str = "w1") -> Task | None:
    with runtime.db.session() as session:
        return lifecycle.claim(session, task.id, worker)


def test_claim_increments_the_fencing_token_and_opens_an_attempt(runtime: Runtime) -> None:
    """Claim moves a pending task to running with attempt 1 and an open attempt row."""
    task = enqueue(runtime)
    claimed = claim(runtime, task)
    assert claimed is not None
    assert (claimed.status, claimed.attempt, claimed.worker_id) == ("running", 1, "w1")
    with runtime.db.session() as session:
        attempts = queries.list_attempts(session, task.id)
    assert [(a.attempt, a.worker_id, a.ended_at) for a in attempts] == [(1, "w1", None)]


def test_second_claim_of_a_running_task_is_refused(runtime: Runtime) -> None:
    """A duplicated message cannot claim a task that is already running."""
    task = enqueue(runtime)
    assert claim(runtime, task, "w1") is not None
    assert claim(runtime, task, "w2") is None


def test_writes_from_a_superseded_attempt_are_refused(runtime: Runtime) -> None:
    """After a rescue and a new claim, the old attempt can neither heartbeat nor finish."""
    task = enqueue(runtime)
    first = claim(runtime, task)
    assert first is not None
    with runtime.db.session() as session:
        session.execute(update(Task).where(Task.id == task.id)
                        .values(heartbeat_at=Task.heartbeat_at - timedelta(hours=1)))
    with runtime.db.session() as session:
        assert [t.id for t in lifecycle.rescue_stale(session, runtime.settings)] == [task.id]
    second = claim(runtime, task, "w2")
    assert second is not None and second.attempt == 2
    with runtime.db.session() as session:
        assert not lifecycle.heartbeat(session, task.id, 1).current
        assert queries.append_event(session, task.id, "zombie", {}, attempt=1) is None
    with pytest.raises(errors.StaleAttempt), runtime.db.session() as session:
        lifecycle.complete(session, task.id, 1, {"from": "zombie"})
    with runtime.db.session() as session:
        done = lifecycle.complete(session, task.id, 2, {"from": "current"})
    assert done.result == {"from": "current"}


def test_retryable_failure_goes_back_to_pending_with_backoff(runtime: Runtime) -> None:
    """A retryable failure re-queues with retry_count + 1, no error code, and not_before set."""
    task = enqueue(runtime)
    claim(runtime, task)
    failure = errors.TaskFailure(ErrorCode.AGENT_ERROR, "boom")
    with runtime.db.session() as session:
        retried = lifecycle.fail(session, task.id, 1, failure, runtime.settings)
        waited = session.execute(text("SELECT not_before - now() FROM tasks WHERE id = :id"),
                                 {"id": task.id}).scalar_one()
    assert (retried.status, retried.retry_count, retried.error_code) == ("pending", 1, None)
    assert timedelta(0) < waited <= timedelta(seconds=runtime.settings.retry_backoff_s)
    assert claim(runtime, task) is None, "not claimable before its backoff passed"
    with runtime.db.session() as session:
        attempts = queries.list_attempts(session, task.id)
    assert (attempts[0].outcome, attempts[0].error_code, attempts[0].error) == (
        "retry", "AGENT_ERROR", "boom")


def test_last_retry_fails_with_its_code(runtime: Runtime) -> None:
    """When no retry is left the task fails with the error code of the last attempt."""
    task = enqueue(runtime, max_retries=0)
    claim(runtime, task)
    failure = errors.TaskFailure(ErrorCode.TIMEOUT, "too slow")
    with runtime.db.session() as session:
        failed = lifecycle.fail(session, task.id, 1, failure, runtime.settings)
    assert (failed.status, failed.error_code, failed.error) == ("failed", "TIMEOUT", "too slow")
    assert failed.completed_at is not None


def test_non_retryable_failure_fails_at_once(runtime: Runtime) -> None:
    """AUTH_FAILED is never retried, whatever retries are left."""
    task = enqueue(runtime, max_retries=5)
    claim(runtime, task)
    failure = errors.TaskFailure(ErrorCode.AUTH_FAILED, "Invalid API key")
    with runtime.db.session() as session:
        failed = lifecycle.fail(session, task.id, 1, failure, runtime.settings)
    assert (failed.status, failed.error_code, failed.retry_count) == ("failed", "AUTH_FAILED", 0)


def test_retry_after_from_the_provider_sets_the_wait(runtime: Runtime) -> None:
    """A rate limit with a known retry-after waits exactly that long."""
    task = enqueue(runtime)
    claim(runtime, task)
    failure = errors.TaskFailure(ErrorCode.RATE_LIMITED, "429", retry_after_s=120)
    with runtime.db.session() as session:
        lifecycle.fail(session, task.id, 1, failure, runtime.settings)
        waited = session.execute(text("SELECT not_before - now() FROM tasks WHERE id = :id"),
                                 {"id": task.id}).scalar_one()
    assert timedelta(seconds=119) < waited <= timedelta(seconds=120)


def test_cancel_pending_is_immediate_and_running_is_requested(runtime: Runtime) -> None:
    """Pending cancels at once; running records the request; finished answers a conflict."""
    waiting, busy = enqueue(runtime), enqueue(runtime)
    claim(runtime, busy)
    with runtime.db.session() as session:
        assert lifecycle.cancel(session, waiting.id).status == "cancelled"
        asked = lifecycle.cancel(session, busy.id)
    assert asked.status == "running" and asked.cancel_requested_at is not None
    with runtime.db.session() as session:
        assert lifecycle.heartbeat(session, busy.id, 1).cancel_requested
        assert lifecycle.finish_cancelled(session, busy.id, 1).status == "cancelled"
    with pytest.raises(errors.InvalidTransition), runtime.db.session() as session:
        lifecycle.cancel(session, busy.id)
    with pytest.raises(errors.TaskNotFound), runtime.db.session() as session:
        lifecycle.cancel(session, uuid.uuid4())


def test_rescue_without_retries_fails_stale_worker(runtime: Runtime) -> None:
    """A stale running task with no retry left ends STALE_WORKER."""
    task = enqueue(runtime, max_retries=0)
    claim(runtime, task)
    with runtime.db.session() as session:
        session.execute(update(Task).where(Task.id == task.id)
                        .values(heartbeat_at=Task.heartbeat_at - timedelta(hours=1)))
    with runtime.db.session() as session:
        [rescued] = lifecycle.rescue_stale(session, runtime.settings)
    assert (rescued.status, rescued.error_code) == ("failed", "STALE_WORKER")


def test_fresh_heartbeat_is_not_rescued(runtime: Runtime) -> None:
    """A running task that heartbeats is left alone by rescue."""
    task = enqueue(runtime)
    claim(runtime, task)
    with runtime.db.session() as session:
        assert lifecycle.rescue_stale(session, runtime.settings) == []


def test_idempotency_key_replay_returns_the_first_task(runtime: Runtime) -> None:
    """The same key with the same request returns the first task; a different request conflicts."""
    with runtime.db.session() as session:
        first, created = lifecycle.enqueue(session, new_task(idempotency_key="k", request_hash="a"))
        again, created_again = lifecycle.enqueue(
            session, new_task(idempotency_key="k", request_hash="a"))
    assert created and not created_again and again.id == first.id
    with pytest.raises(errors.IdempotencyConflict), runtime.db.session() as session:
        lifecycle.enqueue(session, new_task(idempotency_key="k", request_hash="b"))


def test_events_are_numbered_in_order(runtime: Runtime) -> None:
    """Life-cycle steps land in the event log with consecutive sequence numbers."""
    task = enqueue(runtime)
    claim(runtime, task)
    with runtime.db.session() as session:
        lifecycle.complete(session, task.id, 1, {})
        events = queries.list_events(session, task.id, after=0, limit=100)
    assert [(e.seq, e.kind) for e in events] == [(1, "enqueued"), (2, "claimed"), (3, "completed")]


def test_cleanup_deletes_old_finished_tasks_in_batches(runtime: Runtime) -> None:
    """Cleanup removes terminal tasks past retention with their logs, and keeps the rest."""
    from rdev import maintenance

    runtime.settings = runtime.settings.with_overrides(cleanup_batch_size=3)
    old = [enqueue(runtime) for _ in range(7)]
    fresh, waiting = enqueue(runtime), enqueue(runtime)
    with runtime.db.session() as session:
        for task in [*old, fresh]:
            lifecycle.cancel(session, task.id)
        session.execute(update(Task).where(Task.id.in_([t.id for t in old]))
                        .values(completed_at=Task.completed_at - timedelta(days=30)))
    assert maintenance.cleanup(runtime) == 7
    with runtime.db.session() as session:
        left = {t.id for t in queries.list_tasks(session, queries.ListFilter(), limit=100)}
        orphans = session.execute(
            text("SELECT count(*) FROM task_events WHERE task_id = ANY(:ids)"),
            {"ids": [t.id for t in old]},
        ).scalar_one()
    assert left == {fresh.id, waiting.id}
    assert orphans == 0

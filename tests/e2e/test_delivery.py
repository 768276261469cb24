"""Delivery with a real worker: retries, cancel, priorities, time limits, lost messages."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient

from rdev.config import Settings
from rdev.web.app import create_app
from tests.support import services
from tests.support.api import enqueue, task_of, wait_status
from tests.support.probe import read_records
from tests.support.processes import start_beat, start_worker, wait_for

pytestmark = pytest.mark.e2e

#: a Redis database this module owns outright, so it may flush all of it
FLUSHED_DB = 11


def test_retryable_failure_is_retried_with_backoff_then_fails(
    client: FlaskClient, settings: Settings, tmp_path: Path
) -> None:
    """An AGENT_ERROR is retried max_retries times with growing waits, then fails with its code."""
    worker = start_worker(settings, tmp_path, "w1")
    try:
        task = enqueue(client, max_retries=2, spec={"fail_code": "AGENT_ERROR"})
        done = wait_status(client, task["id"], "failed", timeout=30)
    finally:
        worker.stop()
    assert (done["error_code"], done["retry_count"], done["attempt"]) == ("AGENT_ERROR", 2, 3)
    attempts = done["attempts"]
    assert [a["outcome"] for a in attempts] == ["retry", "retry", "failed"]
    gaps = [
        _seconds(attempts[n + 1]["started_at"]) - _seconds(attempts[n]["ended_at"])
        for n in range(2)
    ]
    backoff = settings.retry_backoff_s
    assert gaps[0] >= backoff * 0.9 and gaps[1] >= backoff * 2 * 0.9


def test_retry_then_success(client: FlaskClient, settings: Settings, tmp_path: Path) -> None:
    """A task that fails once with a retryable code completes on its second attempt."""
    worker = start_worker(settings, tmp_path, "w1")
    try:
        task = enqueue(client, spec={"fail_code": "TIMEOUT", "fail_times": 1})
        done = wait_status(client, task["id"], "completed", timeout=30)
    finally:
        worker.stop()
    assert (done["retry_count"], done["error_code"], done["result"]["attempt"]) == (1, None, 2)


def test_non_retryable_failure_fails_at_once(
    client: FlaskClient, settings: Settings, tmp_path: Path
) -> None:
    """AUTH_FAILED ends the task on its first attempt."""
    worker = start_worker(settings, tmp_path, "w1")
    try:
        task = enqueue(client, max_retries=5, spec={"fail_code": "AUTH_FAILED"})
        done = wait_status(client, task["id"], "failed")
    finally:
        worker.stop()
    assert (done["error_code"], done["attempt"], done["retry_count"]) == ("AUTH_FAILED", 1, 0)


def test_cancel_running_task_stops_it_within_a_heartbeat(
    client: FlaskClient, settings: Settings, tmp_path: Path
) -> None:
    """A running task told to cancel stops and is recorded cancelled, without finishing."""
    record = str(tmp_path / "record.jsonl")
    worker = start_worker(settings, tmp_path, "w1")
    try:
        task = enqueue(client, spec={"sleep_s": 60, "record": record})
        wait_status(client, task["id"], "running")
        asked = time.monotonic()
        assert client.post(f"/work/{task['id']}/cancel").status_code == 200
        done = wait_status(client, task["id"], "cancelled", timeout=10)
        took = time.monotonic() - asked
    finally:
        worker.stop()
    assert took < 60
    assert [a["outcome"] for a in done["attempts"]] == ["cancelled"]
    assert [r["phase"] for r in read_records(record)] == ["start"]


def test_time_limit_ends_a_stuck_handler_with_timeout(
    client: FlaskClient, settings: Settings, tmp_path: Path
) -> None:
    """A handler that ignores stop signals is ended by the task's time limit with TIMEOUT."""
    worker = start_worker(settings, tmp_path, "w1")
    try:
        task = enqueue(client, timeout_s=1, max_retries=0,
                       spec={"sleep_s": 60, "cooperative": False})
        done = wait_status(client, task["id"], "failed", timeout=30)
    finally:
        worker.stop()
    assert done["error_code"] == "TIMEOUT"


def test_priority_9_overtakes_a_backlog_of_priority_0(
    client: FlaskClient, settings: Settings, tmp_path: Path
) -> None:
    """A priority-9 task enqueued behind 100 priority-0 tasks is the next one to start."""
    record = str(tmp_path / "record.jsonl")
    backlog = [enqueue(client, priority=0, spec={"record": record})["id"] for _ in range(100)]
    urgent = enqueue(client, priority=9, spec={"record": record})["id"]
    worker = start_worker(settings, tmp_path, "w1", concurrency=1)
    try:
        wait_status(client, urgent, "completed")
    finally:
        worker.stop()
    starts = [r["task"] for r in read_records(record) if r["phase"] == "start"]
    assert starts[0] == urgent
    assert set(starts[1:]) <= set(backlog)


def test_redis_flushed_with_50_pending_tasks_all_complete(
    settings: Settings, tmp_path: Path
) -> None:
    """Losing every broker message loses no task: beat's outbox publishes them again."""
    settings = settings.with_overrides(broker_url=services.redis_url(FLUSHED_DB))
    services.flush_redis(FLUSHED_DB)
    client = create_app(settings).test_client()
    ids = [enqueue(client)["id"] for _ in range(50)]
    broker = redis.Redis.from_url(settings.broker_url)
    assert sum(broker.llen(key) for key in broker.scan_iter(f"{settings.queue}*")) == 50
    services.flush_redis(FLUSHED_DB)
    beat = start_beat(settings, tmp_path)
    worker = start_worker(settings, tmp_path, "w1", concurrency=2)
    try:
        def all_done() -> bool:
            return all(task_of(client, i)["status"] == "completed" for i in ids)

        wait_for(all_done, 60, "all 50 tasks to complete", every=0.5)
    finally:
        worker.stop()
        beat.stop()
    assert {task_of(client, i)["attempt"] for i in ids} == {1}


def _seconds(moment: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(moment).timestamp()

"""A real `celery -A rdev worker` executes tasks enqueued through the real API."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from rdev import dispatch
from rdev.config import Settings
from rdev.db import queries
from rdev.runtime import Runtime
from tests.support.api import enqueue, wait_status
from tests.support.probe import read_records
from tests.support.processes import start_beat, start_worker

pytestmark = pytest.mark.e2e


def test_task_runs_to_completion(client: FlaskClient, settings: Settings, tmp_path: Path) -> None:
    """A task goes pending -> running -> completed and keeps one attempt row."""
    record = str(tmp_path / "record.jsonl")
    worker = start_worker(settings, tmp_path, "w1")
    try:
        task = enqueue(client, spec={"sleep_s": 1.0, "record": record})
        running = wait_status(client, task["id"], "running")
        assert running["worker_id"].startswith("w1-")
        done = wait_status(client, task["id"], "completed")
    finally:
        worker.stop()
    assert done["result"]["attempt"] == 1
    assert [a["outcome"] for a in done["attempts"]] == ["completed"]
    assert [r["phase"] for r in read_records(record)] == ["start", "end"]


def test_duplicate_message_runs_once(
    client: FlaskClient, settings: Settings, runtime: Runtime, tmp_path: Path
) -> None:
    """The same message delivered twice while the task runs leads to one execution."""
    record = str(tmp_path / "record.jsonl")
    worker = start_worker(settings, tmp_path, "w1", concurrency=2)
    try:
        task = enqueue(client, spec={"sleep_s": 2.0, "record": record})
        wait_status(client, task["id"], "running")
        with runtime.db.session() as session:
            row = queries.get_task(session, uuid.UUID(task["id"]))
        assert row is not None
        assert dispatch.publish(runtime, row)
        assert dispatch.publish(runtime, row)
        done = wait_status(client, task["id"], "completed")
        time.sleep(1.0)
    finally:
        worker.stop()
    assert done["attempt"] == 1
    starts = [r for r in read_records(record) if r["phase"] == "start"]
    assert len(starts) == 1


def test_killed_worker_task_is_rescued_and_completes_once(
    client: FlaskClient, settings: Settings, tmp_path: Path
) -> None:
    """SIGKILL of a worker mid-task: beat rescues the task and another worker completes it."""
    record = str(tmp_path / "record.jsonl")
    doomed = start_worker(settings, tmp_path, "doomed", concurrency=1)
    beat = start_beat(settings, tmp_path)
    survivor = None
    try:
        task = enqueue(client, spec={"sleep_s": 3.0, "record": record})
        wait_status(client, task["id"], "running")
        doomed.kill()
        survivor = start_worker(settings, tmp_path, "survivor", concurrency=1)
        done = wait_status(client, task["id"], "completed", timeout=60)
    finally:
        for process in (survivor, beat):
            if process is not None:
                process.stop()
    assert done["worker_id"].startswith("survivor-")
    assert done["retry_count"] == 1
    assert [a["outcome"] for a in done["attempts"]] == ["rescued", "completed"]
    ends = [r for r in read_records(record) if r["phase"] == "end"]
    assert len(ends) == 1


def test_killed_worker_without_retries_ends_stale(
    client: FlaskClient, settings: Settings, tmp_path: Path
) -> None:
    """A task whose worker died with no retry left fails with STALE_WORKER."""
    doomed = start_worker(settings, tmp_path, "doomed", concurrency=1)
    beat = start_beat(settings, tmp_path)
    try:
        task = enqueue(client, spec={"sleep_s": 30.0}, max_retries=0)
        wait_status(client, task["id"], "running")
        doomed.signal_group(signal.SIGKILL)
        done = wait_status(client, task["id"], "failed", timeout=30)
    finally:
        beat.stop()
        doomed.stop()
    assert done["error_code"] == "STALE_WORKER"

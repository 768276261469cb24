"""Real workers: registration, drain, warm shutdown with its grace period, slots and wake-ups."""

from __future__ import annotations

import itertools
import signal
from datetime import datetime
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from rdev.config import Settings
from tests.support.api import enqueue, task_of, wait_status
from tests.support.probe import read_records
from tests.support.processes import Process, start_beat, start_worker, wait_for

pytestmark = pytest.mark.e2e


def node_of(settings: Settings, name: str, client: FlaskClient) -> str:
    """The registry id of the worker started as `name`."""
    def found() -> str | None:
        ids = [w["id"] for w in client.get("/workers").json["workers"]]
        return next((i for i in ids if i.startswith(f"{name}-{settings.queue}@")), None)

    return str(wait_for(found, 15, f"worker {name} to register"))


def test_worker_registers_and_goes_offline_when_stopped(
    client: FlaskClient, settings: Settings, tmp_path: Path
) -> None:
    """A worker appears idle with its queue and concurrency, and offline after it stops."""
    worker = start_worker(settings, tmp_path, "reg", concurrency=2)
    try:
        node = node_of(settings, "reg", client)
        shown = client.get(f"/workers/{node}").json
        assert shown["status"] == "idle"
        assert shown["queues"] == [settings.queue]
        assert shown["concurrency"] == 2
    finally:
        worker.stop()
    assert client.get(f"/workers/{node}").json["status"] == "offline"


def test_drain_stops_consuming_while_running_tasks_finish(
    client: FlaskClient, settings: Settings, tmp_path: Path
) -> None:
    """After drain, the running task completes and new tasks wait for another worker."""
    drained = start_worker(settings, tmp_path, "drained", concurrency=1)
    other: Process | None = None
    try:
        node = node_of(settings, "drained", client)
        first = enqueue(client, spec={"sleep_s": 2.0})
        wait_status(client, first["id"], "running")
        response = client.post(f"/workers/{node}/drain")
        assert response.status_code == 202
        assert response.json["drain_acknowledged"] is True
        second = enqueue(client, spec={"sleep_s": 0.1})
        assert wait_status(client, first["id"], "completed")["worker_id"] == node
        assert task_of(client, second["id"])["status"] == "pending"
        assert client.get(f"/workers/{node}").json["status"] == "draining"
        other = start_worker(settings, tmp_path, "other", concurrency=1)
        done = wait_status(client, second["id"], "completed")
        assert done["worker_id"].startswith("other-")
    finally:
        for process in (drained, other):
            if process is not None:
                process.stop()


def test_sigterm_releases_what_cannot_finish_within_the_grace_period(
    client: FlaskClient, settings: Settings, tmp_path: Path
) -> None:
    """Warm shutdown: after the grace period the task goes back to pending without a retry."""
    quick = settings.with_overrides(shutdown_grace_s=1.0)
    worker = start_worker(quick, tmp_path, "term", concurrency=1)
    try:
        task = enqueue(client, spec={"sleep_s": 60.0})
        wait_status(client, task["id"], "running")
        worker.popen.send_signal(signal.SIGTERM)  # the main process only, as `docker stop`
        released = wait_status(client, task["id"], "pending", timeout=15)
        worker.popen.wait(timeout=15)
    finally:
        worker.stop()
    assert released["retry_count"] == 0
    assert [a["outcome"] for a in released["attempts"]] == ["rescued"]
    assert released["attempts"][0]["error"] == "worker shut down"


def test_sigterm_lets_a_short_task_finish(
    client: FlaskClient, settings: Settings, tmp_path: Path
) -> None:
    """Warm shutdown: a task that ends within the grace period completes on the same worker."""
    record = str(tmp_path / "record.jsonl")
    worker = start_worker(settings.with_overrides(shutdown_grace_s=20.0), tmp_path, "fin", 1)
    try:
        task = enqueue(client, spec={"sleep_s": 2.0, "record": record})
        wait_status(client, task["id"], "running")
        worker.popen.send_signal(signal.SIGTERM)
        done = wait_status(client, task["id"], "completed", timeout=15)
        worker.popen.wait(timeout=15)
        late = enqueue(client, spec={})
    finally:
        worker.stop()
    assert done["retry_count"] == 0
    assert [r["phase"] for r in read_records(record)] == ["start", "end"]
    assert task_of(client, late["id"])["status"] == "pending"


def test_project_slot_is_handed_on_without_beat(
    client: FlaskClient, settings: Settings, tmp_path: Path
) -> None:
    """With one slot per project, tasks of one project never overlap and all finish, no beat."""
    record = str(tmp_path / "record.jsonl")
    limited = settings.with_overrides(project_concurrency="probe=1")
    workers = [start_worker(limited, tmp_path, f"slot{i}", concurrency=2) for i in range(2)]
    try:
        tasks = [enqueue(client, spec={"sleep_s": 0.3, "record": record}) for _ in range(6)]
        others = [enqueue(client, project_id="free", spec={"sleep_s": 0.3}) for _ in range(2)]
        for task in [*tasks, *others]:
            wait_status(client, task["id"], "completed", timeout=30)
    finally:
        for worker in workers:
            worker.stop()
    spans = sorted((r["start"], r["end"]) for r in read_records(record) if r["phase"] == "end")
    assert len(spans) == 6
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans))


def test_rate_limit_pauses_the_provider_until_its_reset(
    client: FlaskClient, settings: Settings, tmp_path: Path
) -> None:
    """After RATE_LIMITED with a reset time, the provider's other tasks start only after it."""
    record = str(tmp_path / "record.jsonl")
    worker = start_worker(settings, tmp_path, "pause", concurrency=2)
    beat = start_beat(settings, tmp_path)
    try:
        limited = enqueue(client, spec={"agent": "x", "fail_code": "RATE_LIMITED",
                                        "fail_times": 1, "retry_after_s": 4.0})
        wait_for(lambda: task_of(client, limited["id"])["retry_count"] == 1, 20, "the 429")
        pauses = client.get("/work/stats").json["provider_pauses"]
        assert set(pauses) == {"x"}
        waiting = [enqueue(client, spec={"agent": "x", "record": record}) for _ in range(2)]
        free = enqueue(client, spec={"agent": "y", "record": record})
        assert wait_status(client, free["id"], "completed")["retry_count"] == 0
        for task in [limited, *waiting]:
            done = wait_status(client, task["id"], "completed", timeout=30)
            assert done["retry_count"] == (1 if task is limited else 0)
    finally:
        beat.stop()
        worker.stop()
    until = datetime.fromisoformat(pauses["x"]["until"]).timestamp()
    starts = {r["task"]: r["start"] for r in read_records(record) if r["phase"] == "start"}
    assert starts[free["id"]] < until
    assert all(starts[task["id"]] >= until for task in waiting)


def test_lane_limit_set_through_the_api_holds_across_the_fleet(
    client: FlaskClient, settings: Settings, tmp_path: Path
) -> None:
    """A lane capped at two through the API never runs three at once, whatever the project."""
    record = str(tmp_path / "record.jsonl")
    assert client.patch("/lanes/probe", json={"max_concurrency": 2}).status_code == 200
    workers = [start_worker(settings, tmp_path, f"lane{i}", concurrency=3) for i in range(2)]
    try:
        tasks = [enqueue(client, project_id=f"p{n}", spec={"sleep_s": 0.4, "record": record})
                 for n in range(8)]
        for task in tasks:
            wait_status(client, task["id"], "completed", timeout=40)
    finally:
        for worker in workers:
            worker.stop()
    spans = [(r["start"], r["end"]) for r in read_records(record) if r["phase"] == "end"]
    assert len(spans) == 8
    most = max(sum(start <= moment < end for start, end in spans) for moment, _ in spans)
    assert most == 2

"""The operators' API: workers, drain, lanes, retention, metrics and provider pauses in stats."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from rdev import lifecycle, maintenance, workers
from rdev.db import fleet_queries
from rdev.runtime import Runtime
from tests.fleet.helpers import add_task, claim

pytestmark = pytest.mark.integration


def test_workers_list_and_detail_show_running_tasks(client: FlaskClient, runtime: Runtime) -> None:
    """A registered worker is listed, busy while it runs a task, with the task in its detail."""
    assert client.get("/workers").json == {"workers": []}
    workers.register(runtime, "w1@host", queues=["rdev"], concurrency=2)
    task = add_task(runtime)
    assert claim(runtime, task.id, "w1@host") is not None
    listed = client.get("/workers").json["workers"]
    assert [(w["id"], w["status"], w["running"]) for w in listed] == [("w1@host", "busy", 1)]
    detail = client.get("/workers/w1@host").json
    assert [t["id"] for t in detail["running_tasks"]] == [str(task.id)]
    assert client.get("/workers?status=busy").status_code == 200
    assert client.get("/workers?status=sleepy").status_code == 400


def test_unknown_worker_is_404(client: FlaskClient) -> None:
    """Reading or draining a worker that never registered answers 404."""
    assert client.get("/workers/nobody@host").status_code == 404
    assert client.post("/workers/nobody@host/drain").status_code == 404


def test_drain_marks_the_worker_draining(client: FlaskClient, runtime: Runtime) -> None:
    """Drain records the worker as draining (and says whether the worker acknowledged)."""
    workers.register(runtime, "w2@host", queues=[runtime.settings.queue], concurrency=1)
    response = client.post("/workers/w2@host/drain")
    assert response.status_code == 202
    assert response.json["status"] == "draining"
    assert response.json["drain_acknowledged"] is False  # no such Celery node is running
    workers.refresh(runtime, "w2@host")
    assert client.get("/workers/w2@host").json["status"] == "draining"


def test_silent_workers_are_marked_offline(runtime: Runtime) -> None:
    """A worker whose row was not refreshed for the offline period becomes offline."""
    workers.register(runtime, "w3@host", queues=["rdev"], concurrency=1)
    quick = Runtime(runtime.settings.with_overrides(worker_offline_after_s=0.01), runtime.celery)
    assert workers.mark_offline(quick) == ["w3@host"]
    with runtime.db.session() as session:
        assert fleet_queries.count_workers_by_status(session) == {"offline": 1}


def test_lanes_change_at_run_time(client: FlaskClient) -> None:
    """Lane limits are read with their defaults and overridden (or reset) through the API."""
    lanes = {lane["type"]: lane for lane in client.get("/lanes").json["lanes"]}
    assert lanes["build"]["project_concurrency"] == 1
    assert lanes["deploy"]["side_effects"] is True
    changed = client.patch("/lanes/build", json={"max_concurrency": 4, "project_concurrency": 2})
    assert changed.status_code == 200
    assert (changed.json["max_concurrency"], changed.json["project_concurrency"]) == (4, 2)
    reset = client.put("/lanes/build", json={"project_concurrency": None}).json
    assert reset["project_concurrency"] == 1
    assert client.patch("/lanes/build", json={"max_concurrency": -1}).status_code == 400
    assert client.patch("/lanes/build", json={"speed": 1}).status_code == 400
    assert client.patch("/lanes/nope", json={"max_concurrency": 1}).status_code == 400


def test_retention_changes_at_run_time_and_cleanup_obeys(
    client: FlaskClient, runtime: Runtime
) -> None:
    """The retention set through the API is the one cleanup applies."""
    assert client.get("/settings/retention").json["retention_days"] == 7
    assert client.put("/settings/retention", json={"retention_days": 0}).status_code == 400
    assert client.put("/settings/retention", json={"days": 1}).status_code == 400
    task = add_task(runtime)
    running = claim(runtime, task.id)
    assert running is not None
    with runtime.db.session() as session:
        lifecycle.complete(session, task.id, running.attempt, {})
    assert maintenance.cleanup(runtime) == 0
    tiny = timedelta(seconds=0.5) / timedelta(days=1)
    assert client.put("/settings/retention", json={"retention_days": tiny}).status_code == 200
    time.sleep(0.6)
    assert maintenance.cleanup(runtime) == 1


def test_metrics_are_read_from_the_database(client: FlaskClient, runtime: Runtime) -> None:
    """/metrics reports tasks, queue depth, workers, durations, failures and rescues."""
    workers.register(runtime, "w1@host", queues=["rdev"], concurrency=1)
    done, waiting = add_task(runtime), add_task(runtime)
    running = claim(runtime, done.id)
    assert running is not None
    with runtime.db.session() as session:
        lifecycle.complete(session, done.id, running.attempt, {})
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)
    assert 'rdev_tasks{status="completed",type="probe"} 1.0' in text
    assert 'rdev_queue_depth{type="probe"} 1.0' in text
    assert 'rdev_workers{status="idle"} 1.0' in text
    assert 'rdev_task_duration_seconds_count{type="probe"} 1.0' in text
    assert "rdev_rescues_total 0.0" in text
    assert "rdev_oldest_pending_age_seconds" in text
    assert waiting.status == "pending"


def test_stats_and_openapi_show_the_fleet(client: FlaskClient) -> None:
    """Stats carry the provider pauses; the OpenAPI document lists the fleet endpoints."""
    assert client.get("/work/stats").json["provider_pauses"] == {}
    paths = client.get("/openapi.json").json["paths"]
    for path in ("/workers", "/workers/{worker_id}/drain", "/lanes/{type}", "/metrics"):
        assert path in paths

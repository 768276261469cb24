"""Redis flushed and restarted, PostgreSQL restarted, all under load: nothing is lost or stuck."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from rdev.config import Settings
from rdev.db import migrate
from rdev.db.models import Task
from rdev.runtime import Runtime
from rdev.web.app import create_app
from tests.chaos.common import (
    assert_each_ran_to_the_end_once,
    enqueue,
    tasks_and_attempts,
    wait_all_terminal,
)
from tests.chaos.servers import OwnPostgres, OwnRedis
from tests.support.probe import read_records
from tests.support.processes import Process, start_beat, start_worker, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    """A Redis server this test alone uses, and may flush and kill."""
    server = OwnRedis()
    server.start()
    yield server
    server.kill()


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    """A PostgreSQL cluster this test alone uses, and may stop and start."""
    try:
        server = OwnPostgres()
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"cannot run a throwaway PostgreSQL here: {exc}")
    server.start()
    yield server
    server.destroy()


def fleet(settings: Settings, tmp_path: Path) -> list[Process]:
    """Beat and two workers of two processes each."""
    return [start_beat(settings, tmp_path),
            *(start_worker(settings, tmp_path, f"s{i}", concurrency=2) for i in range(2))]


def started(record: str, count: int) -> bool:
    """True once `count` attempts have started."""
    return len([r for r in read_records(record) if r["phase"] == "start"]) >= count


def test_redis_flushall_and_restart_lose_nothing(
    settings: Settings, own_redis: OwnRedis, tmp_path: Path
) -> None:
    """Messages wiped by FLUSHALL or by a Redis restart come back from PostgreSQL."""
    record = str(tmp_path / "record.jsonl")
    mine = settings.with_overrides(broker_url=own_redis.url)
    app = create_app(mine)
    client = app.test_client()
    processes = fleet(mine, tmp_path)
    try:
        ids = [enqueue(client, spec={"sleep_s": 1.0, "record": record}) for _ in range(12)]
        wait_for(lambda: started(record, 2), 30, "tasks to start")
        own_redis.flushall()
        ids += [enqueue(client, spec={"sleep_s": 0.5, "record": record}) for _ in range(4)]
        wait_all_terminal(app.extensions["rdev"], ids, timeout=90)
        later = [enqueue(client, spec={"sleep_s": 1.0, "record": record}) for _ in range(12)]
        wait_for(lambda: started(record, len(ids) + 2), 30, "more tasks to start")
        own_redis.kill()
        later += [enqueue(client, spec={"sleep_s": 0.5, "record": record}) for _ in range(3)]
        time.sleep(2)
        own_redis.start()
        wait_all_terminal(app.extensions["rdev"], later, timeout=120)
    finally:
        for process in processes:
            process.stop()
        _close(app)
    runtime: Runtime = app.extensions["rdev"]
    assert_each_ran_to_the_end_once(runtime, ids + later, record)
    assert {t.status for t in _tasks(runtime, ids + later)} == {"completed"}


def test_postgres_restart_answers_503_then_recovers(
    settings: Settings, own_postgres: OwnPostgres, tmp_path: Path
) -> None:
    """While PostgreSQL is down the API answers 503; afterwards workers finish every task."""
    url = own_postgres.create_database("rdev")
    migrate.upgrade(url)
    record = str(tmp_path / "record.jsonl")
    mine = settings.with_overrides(database_url=url, stale_after_s=20.0)
    app = create_app(mine)
    client = app.test_client()
    processes = fleet(mine, tmp_path)
    try:
        ids = [enqueue(client, spec={"sleep_s": 1.5, "record": record}) for _ in range(16)]
        wait_for(lambda: started(record, 3), 30, "tasks to start")
        own_postgres.stop()
        assert client.get(f"/work/{ids[0]}").status_code == 503
        body = {"project_id": "chaos", "type": "probe", "spec": {}}
        assert client.post("/work/enqueue", json=body).status_code == 503
        assert client.get("/readyz").status_code == 503
        time.sleep(3)
        own_postgres.start()
        ids += [enqueue(client, spec={"sleep_s": 0.2, "record": record}) for _ in range(4)]
        wait_all_terminal(app.extensions["rdev"], ids, timeout=120)
    finally:
        for process in processes:
            process.stop()
        _close(app)
    runtime: Runtime = app.extensions["rdev"]
    assert_each_ran_to_the_end_once(runtime, ids, record)
    assert {t.status for t in _tasks(runtime, ids)} == {"completed"}


def _tasks(runtime: Runtime, ids: list[str]) -> list[Task]:
    return [task for task, _ in tasks_and_attempts(runtime, ids)]


def _close(app: Flask) -> None:
    app.extensions["rdev"].db.dispose()
    app.extensions["rdev"].celery.close()

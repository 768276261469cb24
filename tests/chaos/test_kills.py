"""Workers SIGKILLed at random, and a task outliving the broker's visibility timeout."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from rdev import dispatch, lifecycle
from rdev.config import Settings
from rdev.db import queries
from rdev.runtime import Runtime
from rdev.tasks.celery_app import make_celery
from tests.chaos.common import (
    assert_each_ran_to_the_end_once,
    assert_retries_followed_the_kills,
    enqueue,
    group_pids,
    wait_all_terminal,
)
from tests.support.probe import read_records
from tests.support.processes import start_beat, start_worker, wait_for

pytestmark = pytest.mark.e2e

TASKS = 100
WORKERS = 3
CHAOS_S = 15.0


def test_random_sigkills_lose_nothing_and_never_overlap(
    client: FlaskClient, settings: Settings, runtime: Runtime, tmp_path: Path
) -> None:
    """100 tasks under random SIGKILLs of whole workers: each ends exactly once, no overlap."""
    record = str(tmp_path / "record.jsonl")
    rng = random.Random(5)
    # A quarter have no retry left to lose, so STALE_WORKER endings happen too.
    ids = [enqueue(client, max_retries=rng.choice([0, 3, 3, 3]),
                   spec={"sleep_s": rng.uniform(0.2, 1.0), "record": record})
           for _ in range(TASKS)]
    beat = start_beat(settings, tmp_path)
    workers = [start_worker(settings, tmp_path, f"k{i}", concurrency=2) for i in range(WORKERS)]
    kills = 0
    killed_at: dict[int, float] = {}
    try:
        deadline = time.monotonic() + CHAOS_S
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(0.5, 2.5))
            victim = rng.randrange(WORKERS)
            doomed = group_pids(workers[victim].pid)
            workers[victim].kill()
            killed_at.update(dict.fromkeys(doomed, time.time()))
            kills += 1
            workers[victim] = start_worker(settings, tmp_path, f"k{victim}", concurrency=2)
        wait_all_terminal(runtime, ids, timeout=120)
    finally:
        for process in (*workers, beat):
            process.stop()
    assert kills >= 5
    assert_each_ran_to_the_end_once(runtime, ids, record)
    assert_retries_followed_the_kills(record, killed_at)
    with runtime.db.session() as session:
        counts = {s: n for s, _, n in queries.count_by_status_and_type(session)}
    print(f"sigkill chaos: {kills} kills, {counts}")  # figures for the report (pytest -s)


def test_task_longer_than_visibility_timeout_runs_once(
    settings: Settings, tmp_path: Path
) -> None:
    """Redis redelivers a task that outlived the visibility timeout; the claim drops the copy."""
    record = str(tmp_path / "record.jsonl")
    tiny = settings.with_overrides(max_task_timeout_s=2, task_timeout_s=2, visibility_timeout_s=3)
    app = make_celery(tiny)
    workers = [start_worker(tiny, tmp_path, f"vt{i}", concurrency=1) for i in range(2)]
    try:
        _enqueue_direct(app.rdev, record)
        wait_for(lambda: read_records(record), 20, "the task to start")
        time.sleep(3.5)  # the message is now older than the visibility timeout
        # What kombu's periodic sweep (and every worker's start-up) does to such messages:
        with app.connection_for_write() as connection:
            connection.default_channel.qos.restore_visible(num=100)
        wait_for(lambda: any("dropped: not claimable" in w.output() for w in workers), 20,
                 "the redelivered copy to be dropped")
        wait_for(lambda: len(read_records(record)) >= 2, 20, "the task to end")
    finally:
        for process in workers:
            process.stop()
        app.rdev.db.dispose()
        app.close()
    phases = [(r["attempt"], r["phase"]) for r in read_records(record)]
    assert phases == [(1, "start"), (1, "end")]


def _enqueue_direct(runtime: Runtime, record: str) -> str:
    """Store and publish a non-cooperative probe that sleeps past the visibility timeout."""
    new = lifecycle.NewTask(project_id="vt", type="probe", priority=5, max_retries=0,
                            timeout_s=2, spec={"sleep_s": 6.0, "cooperative": False,
                                               "record": record})
    with runtime.db.session() as session:
        task, _ = lifecycle.enqueue(session, new)
    assert dispatch.publish(runtime, task)
    return str(task.id)

"""What the chaos tests share: enqueueing, waiting for the end, and checking the attempt record."""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from rdev.db import queries
from rdev.db.models import Attempt, Task
from rdev.runtime import Runtime
from tests.support.probe import read_records
from tests.support.processes import wait_for

TERMINAL = {"completed", "failed", "cancelled"}


def enqueue(client: FlaskClient, **fields: Any) -> str:
    """Enqueue a probe task through the API; its id."""
    body = {"project_id": "chaos", "type": "probe", "spec": {}, **fields}
    response = client.post("/work/enqueue", json=body)
    assert response.status_code == 201, response.json
    return str(response.json["id"])  # type: ignore[index]


def tasks_and_attempts(runtime: Runtime, ids: list[str]) -> list[tuple[Task, list[Attempt]]]:
    """The stored tasks with their attempts."""
    with runtime.db.session() as session:
        found = []
        for task_id in ids:
            task = queries.get_task(session, uuid.UUID(task_id))
            assert task is not None, f"task {task_id} was lost"
            found.append((task, queries.list_attempts(session, task.id)))
        return found


def wait_all_terminal(runtime: Runtime, ids: list[str], timeout: float) -> None:
    """Wait until every task is completed, failed or cancelled."""
    def done() -> bool:
        with runtime.db.session() as session:
            rows = [queries.get_task(session, uuid.UUID(i)) for i in ids]
        return all(row is not None and row.status in TERMINAL for row in rows)

    wait_for(done, timeout, f"{len(ids)} tasks to end", every=0.5)


def assert_each_ran_to_the_end_once(runtime: Runtime, ids: list[str], record: str) -> None:
    """Each task ended once (completed by its last attempt, or STALE_WORKER); no overlaps.

    A worker killed between the handler's end and the commit of its result leaves an end record
    of an attempt that did not count; the claim only promises that attempts never overlap.
    """
    runs: dict[str, dict[int, dict[str, float]]] = defaultdict(dict)
    for entry in read_records(record):
        runs[entry["task"]].setdefault(entry["attempt"], {})[entry["phase"]] = (
            entry.get("end", entry["start"]) if entry["phase"] == "end" else entry["start"])
    for task, attempts in tasks_and_attempts(runtime, ids):
        mine = runs[str(task.id)]
        if task.status == "completed":
            assert "end" in mine[task.attempt], task.id
            assert [a.outcome for a in attempts].count("completed") == 1
        else:
            assert (task.status, task.error_code) == ("failed", "STALE_WORKER"), task.id
        assert_no_overlap(attempts)
        for earlier, later in itertools.pairwise(sorted(mine)):
            if "end" in mine[earlier]:
                assert mine[earlier]["end"] <= mine[later]["start"], (task.id, earlier, later)


def assert_no_overlap(attempts: list[Attempt]) -> None:
    """The attempts of one task ran one after another, never two at once."""
    for earlier, later in itertools.pairwise(sorted(attempts, key=lambda a: a.attempt)):
        assert earlier.ended_at is not None, f"attempt {earlier.attempt} never ended"
        assert earlier.ended_at <= later.started_at, (earlier.attempt, later.attempt)


def group_pids(pgid: int) -> list[int]:
    """The processes of a process group (a worker and its pool children), from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            pids.append(int(stat.parent.name))
    return pids


def assert_retries_followed_the_kills(record: str, killed_at: dict[int, float]) -> None:
    """An attempt cut short by a SIGKILL was retried only after its process was dead."""
    runs: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for entry in read_records(record):
        runs[entry["task"]].setdefault(entry["attempt"], {}).update(
            {entry["phase"]: True, "pid": entry["pid"], "start": entry["start"]})
    checked = 0
    for attempts in runs.values():
        for earlier, later in itertools.pairwise(sorted(attempts)):
            cut = attempts[earlier]
            if "end" not in cut and cut["pid"] in killed_at:
                assert attempts[later]["start"] >= killed_at[cut["pid"]]
                checked += 1
    assert checked > 0, "no attempt was cut short by a kill"

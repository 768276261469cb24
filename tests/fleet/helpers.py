"""Small helpers shared by the fleet and chaos tests: enqueue and claim through the life cycle."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

from rdev import lifecycle
from rdev.config import Settings
from rdev.db import queries
from rdev.db.models import Task
from rdev.runtime import Runtime
from tests.support import probe  # noqa: F401 (registers the probe task types)


def add_task(runtime: Runtime, project: str = "p", type_: str = "probe", **spec: Any) -> Task:
    """Store a pending task without publishing it."""
    new = lifecycle.NewTask(project_id=project, type=type_, spec=spec, priority=5,
                            max_retries=3, timeout_s=60)
    with runtime.db.session() as session:
        task, _ = lifecycle.enqueue(session, new)
    return task


def claim(runtime: Runtime, task_id: uuid.UUID, worker: str = "w@test",
          settings: Settings | None = None) -> Task | None:
    """Claim a task with admission (the worker's way)."""
    with runtime.db.session() as session:
        return lifecycle.claim(session, task_id, worker, settings or runtime.settings)


def get(runtime: Runtime, task_id: uuid.UUID) -> Task:
    """A task as stored now."""
    with runtime.db.session() as session:
        task = queries.get_task(session, task_id)
    assert task is not None
    return task


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls on threads released together by a barrier; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results

"""Housekeeping that beat schedules: rescuing stale tasks and deleting old ones."""

from __future__ import annotations

import logging
from datetime import timedelta

from rdev import lanes, lifecycle, runner
from rdev.db import queries
from rdev.db.models import Task
from rdev.runtime import Runtime

log = logging.getLogger(__name__)


def rescue(runtime: Runtime) -> list[Task]:
    """Rescue stale running tasks; publish the re-queued, notify the failed, wake the waiting."""
    with runtime.db.session() as session:
        rescued = lifecycle.rescue_stale(session, runtime.settings)
    for task in rescued:
        log.warning("rescued task %s: now %s", task.id, task.status)
        runner.follow_up(runtime, task)
    return rescued


def cleanup(runtime: Runtime) -> int:
    """Delete terminal tasks past retention (changeable at run time), a batch per transaction."""
    with runtime.db.session() as session:
        older_than = timedelta(days=lanes.retention_days(session, runtime.settings))
    batch = runtime.settings.cleanup_batch_size
    total = 0
    while True:
        with runtime.db.session() as session:
            deleted = queries.delete_finished_batch(session, older_than=older_than, batch=batch)
        total += deleted
        if deleted < batch:
            break
    if total:
        log.info("cleanup deleted %d finished task(s)", total)
    return total

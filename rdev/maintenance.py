"""Housekeeping that beat schedules: rescuing stale tasks and deleting old ones."""

from __future__ import annotations

import logging
from datetime import timedelta

from rdev import admission, dispatch, lanes, lifecycle
from rdev.db import queries
from rdev.db.models import Task
from rdev.runtime import Runtime

log = logging.getLogger(__name__)


def rescue(runtime: Runtime) -> list[Task]:
    """Rescue stale running tasks and publish the ones that went back to pending."""
    with runtime.db.session() as session:
        rescued = lifecycle.rescue_stale(session, runtime.settings)
    for task in rescued:
        log.warning("rescued task %s: now %s", task.id, task.status)
        dispatch.send_requeued(runtime, task)
        admission.wake_safely(runtime, task)  # the lost attempt's slot is free again
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

"""Beat's periodic work: rescue, the outbox, offline marking of silent workers, cleanup."""

from __future__ import annotations

import logging

from celery import Task, shared_task

from rdev import dispatch, maintenance, workers
from rdev.tasks.celery_app import runtime_of

log = logging.getLogger(__name__)


@shared_task(name="rdev.maintenance.rescue", bind=True, ignore_result=True)
def rescue(self: Task) -> int:
    """Rescue running tasks whose worker stopped heartbeating."""
    return len(maintenance.rescue(runtime_of(self.app)))


@shared_task(name="rdev.maintenance.redispatch", bind=True, ignore_result=True)
def redispatch(self: Task) -> int:
    """Publish pending tasks whose message never went out or is overdue."""
    return dispatch.redispatch_due(runtime_of(self.app))


@shared_task(name="rdev.maintenance.cleanup", bind=True, ignore_result=True)
def cleanup(self: Task) -> int:
    """Delete terminal tasks older than the retention period, in batches."""
    return maintenance.cleanup(runtime_of(self.app))


@shared_task(name="rdev.maintenance.workers_offline", bind=True, ignore_result=True)
def workers_offline(self: Task) -> int:
    """Mark workers that stopped refreshing their registry row offline."""
    return len(workers.mark_offline(runtime_of(self.app)))

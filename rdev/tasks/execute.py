"""The Celery task that executes a task: a thin shell around `rdev.runner.run`."""

from __future__ import annotations

import logging
import uuid

from celery import Task, shared_task

from rdev import runner
from rdev.tasks.celery_app import runtime_of

log = logging.getLogger(__name__)


@shared_task(name="rdev.execute", bind=True, ignore_result=True)
def execute(self: Task, task_id: str) -> str:
    """Claim and run the task with this id (the message carries nothing else)."""
    try:
        parsed = uuid.UUID(task_id)
    except (ValueError, TypeError):
        log.error("dropping a message with a malformed task id: %r", task_id)
        return "dropped: malformed id"
    summary = runner.run(runtime_of(self.app), parsed, worker_id=self.request.hostname)
    log.info("task %s: %s", task_id, summary)
    return summary

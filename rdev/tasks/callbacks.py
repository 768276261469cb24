"""Celery tasks of callback delivery: one attempt per message, and beat's overdue pass."""

from __future__ import annotations

import logging
import uuid

from celery import Task, shared_task

from rdev import callbacks
from rdev.tasks.celery_app import runtime_of

log = logging.getLogger(__name__)


@shared_task(name=callbacks.DELIVER, bind=True, ignore_result=True)
def deliver(self: Task, callback_id: str) -> str:
    """Try to deliver one callback; schedules the next attempt as a delayed message."""
    try:
        parsed = uuid.UUID(callback_id)
    except (ValueError, TypeError):
        log.error("dropping a callback message with a malformed id: %r", callback_id)
        return "dropped: malformed id"
    runtime = runtime_of(self.app)
    retry_in = callbacks.deliver(runtime, parsed)
    if retry_in is not None:
        callbacks.publish(runtime, parsed, countdown=retry_in)
        return f"retry in {retry_in:g}s"
    return "done"


@shared_task(name="rdev.maintenance.callbacks", bind=True, ignore_result=True)
def sweep(self: Task) -> int:
    """Publish callbacks whose delivery message was lost (runs inside beat)."""
    return callbacks.sweep(runtime_of(self.app))

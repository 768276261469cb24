"""Worker start: remove the workspaces that attempts of a crashed worker left on this node.

Each attempt also sweeps before it creates its workspace; sweeping at start frees the disk of a
restarted worker before it gets its first task.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from celery import signals

from rdev import errors
from rdev.db import execution_queries
from rdev.execution import workspace
from rdev.runtime import Runtime
from rdev.tasks.celery_app import runtime_of

log = logging.getLogger(__name__)


def sweep(runtime: Runtime) -> int:
    """Remove the workspaces under the root whose attempt is no longer running."""
    def is_live(task_id: uuid.UUID, attempt: int) -> bool:
        with runtime.db.session() as session:
            return execution_queries.attempt_is_running(session, task_id, attempt)

    removed = workspace.sweep(runtime.settings.workspaces, is_live)
    if removed:
        log.info("removed %d workspace(s) left by finished attempts", len(removed))
    return len(removed)


def _on_ready(sender: Any, **_: Any) -> None:
    try:
        sweep(runtime_of(sender.app))
    except errors.ServiceUnavailable as exc:
        log.warning("sweeping workspaces at start failed (each attempt sweeps again): %s", exc)


signals.worker_ready.connect(_on_ready, weak=False)

"""Beat's scheduler: reconciliation runs inside the beat process itself.

Stock beat only publishes due tasks for workers to run. rdev's maintenance must not wait for a
free worker: when every worker is busy with hour-long agent jobs, or every worker is dead, the
rescue of stale tasks is exactly what has to happen. So maintenance entries execute here, in
beat, and everything else is published as usual.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.beat import PersistentScheduler, ScheduleEntry

log = logging.getLogger(__name__)

LOCAL_PREFIX = "rdev.maintenance."


class Scheduler(PersistentScheduler):  # type: ignore[misc]
    """A persistent scheduler that runs rdev's maintenance entries in-process."""

    def apply_async(
        self, entry: ScheduleEntry, producer: Any = None, advance: bool = True, **kwargs: Any
    ) -> Any:
        if not entry.task.startswith(LOCAL_PREFIX):
            return super().apply_async(entry, producer=producer, advance=advance, **kwargs)
        entry = self.reserve(entry) if advance else entry
        outcome = self.app.tasks[entry.task].apply(entry.args, entry.kwargs)
        if outcome.failed():
            log.error("%s failed:\n%s", entry.task, outcome.traceback)
        else:
            log.debug("%s -> %r", entry.task, outcome.result)
        return outcome

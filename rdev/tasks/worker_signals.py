"""Celery worker signals wired to the worker registry (all run in the worker's main process).

- worker_ready: register the worker and start refreshing its row.
- worker_shutting_down (warm): start the grace period that the tasks' heartbeats read.
- worker_shutdown: mark the worker offline once it exited cleanly.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import signals

from rdev import errors, workers
from rdev.tasks.celery_app import runtime_of

log = logging.getLogger(__name__)

_refreshers: dict[str, workers.Refresher] = {}


def _on_ready(sender: Any, **_: Any) -> None:
    """The consumer is ready: register and refresh from a thread (PostgreSQL may be slow)."""
    runtime = runtime_of(sender.app)
    node = sender.hostname
    queues = sorted(sender.app.amqp.queues.consume_from or [runtime.settings.queue])
    refresher = workers.Refresher(
        runtime, node, queues=queues, concurrency=sender.controller.concurrency
    )
    _refreshers[node] = refresher
    refresher.start()


def _on_shutting_down(sender: str, how: str = "Warm", **_: Any) -> None:
    """Runs inside the signal handler: the database write happens on a thread."""
    refresher = _refreshers.get(sender)
    if how != "Warm" or refresher is None:
        return
    threading.Thread(
        target=_begin_shutdown, args=(refresher, sender), name="rdev-shutdown", daemon=True
    ).start()


def _begin_shutdown(refresher: workers.Refresher, node: str) -> None:
    try:
        workers.begin_shutdown(refresher.runtime, node)
    except errors.ServiceUnavailable as exc:
        log.error("recording the shutdown of %s failed: %s", node, exc)


def _on_shutdown(sender: Any, **_: Any) -> None:
    """The worker stopped: no more refreshes; its row says offline."""
    node = getattr(sender, "hostname", None)
    refresher = _refreshers.pop(str(node), None)
    if refresher is None:
        return
    refresher.finish()
    try:
        workers.stopped(refresher.runtime, str(node))
    except errors.ServiceUnavailable as exc:
        log.warning("recording that %s stopped failed: %s", node, exc)


signals.worker_ready.connect(_on_ready, weak=False)
signals.worker_shutting_down.connect(_on_shutting_down, weak=False)
signals.worker_shutdown.connect(_on_shutdown, weak=False)

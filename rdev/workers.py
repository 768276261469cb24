"""The worker registry: registration, liveness, drain, warm shutdown, and what the API shows.

A worker registers when Celery reports it ready and refreshes `last_seen` from a thread of its
main process every RDEV_WORKER_REFRESH_S; beat marks a worker offline after
RDEV_WORKER_OFFLINE_AFTER_S without a refresh. Busy or idle follows its running tasks.

Warm shutdown (SIGTERM to the main process) in prefork: Celery stops consuming and waits for the
pool children, which are not signalled. So the main process writes a deadline (`stop_at`, now +
RDEV_SHUTDOWN_GRACE_S) on its row, and each running task's heartbeat thread in the children
reads it; once it has passed, the task is told to stop with SHUTDOWN and is released to pending
without using a retry. A task that ends within the grace period ends normally.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
from datetime import timedelta
from typing import Any

from rdev import __version__, errors
from rdev.db import fleet_queries
from rdev.db.models_fleet import Worker, WorkerStatus
from rdev.runtime import Runtime

log = logging.getLogger(__name__)

#: a live node answers at once; only an absent one costs the whole wait
CONTROL_TIMEOUT_S = 5.0


def register(runtime: Runtime, node: str, *, queues: list[str], concurrency: int) -> None:
    """Record a worker that is ready to consume."""
    values = {
        "id": node,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "queues": queues,
        "concurrency": concurrency,
        "version": __version__,
    }
    with runtime.db.session() as session:
        fleet_queries.upsert_worker(session, values)
    log.info("registered worker %s (queues %s, concurrency %d)", node, queues, concurrency)


def record_providers(runtime: Runtime, node: str) -> list[str]:
    """Check which agent providers this worker can run and record them."""
    try:
        registry = importlib.import_module("rdev.agents.registry")
        providers: list[str] = list(registry.available(runtime.settings))
    except Exception as exc:  # any broken provider check must not keep the worker from serving
        log.warning("checking agent providers failed: %s", exc)
        providers = []
    with runtime.db.session() as session:
        fleet_queries.set_worker_providers(session, node, providers)
    return providers


def refresh(runtime: Runtime, node: str) -> bool:
    """Stamp the worker as alive; False when it has no row (or PostgreSQL is away)."""
    try:
        with runtime.db.session() as session:
            return fleet_queries.refresh_worker(session, node) is not None
    except errors.ServiceUnavailable as exc:
        log.warning("refreshing worker %s failed: %s", node, exc)
        return True  # the row is probably there; PostgreSQL is not


def begin_shutdown(runtime: Runtime, node: str) -> None:
    """A warm shutdown started: running tasks get the grace period, then are released."""
    grace = timedelta(seconds=runtime.settings.shutdown_grace_s)
    with runtime.db.session() as session:
        fleet_queries.set_worker_stop_at(session, node, grace)
    log.warning("worker %s shutting down: running tasks have %ss to finish", node, grace.seconds)


def stopped(runtime: Runtime, node: str) -> None:
    """The worker exited cleanly."""
    with runtime.db.session() as session:
        fleet_queries.set_worker_stopped(session, node)


def drain(runtime: Runtime, node: str) -> dict[str, Any]:
    """Stop a worker consuming (Celery's cancel_consumer); its running tasks finish."""
    with runtime.db.session() as session:
        worker = fleet_queries.get_worker(session, node)
        if worker is None:
            raise errors.WorkerNotFound(node)
        queues = list(worker.queues) or [runtime.settings.queue]
    replies = [
        runtime.celery.control.cancel_consumer(
            queue, destination=[node], reply=True, timeout=CONTROL_TIMEOUT_S
        )
        for queue in queues
    ]
    with runtime.db.session() as session:
        fleet_queries.set_worker_draining(session, node)
        shown = describe(session, node)
    acknowledged = all(any(node in reply for reply in answer) for answer in replies)
    return {**shown, "drain_acknowledged": acknowledged}


def mark_offline(runtime: Runtime) -> list[str]:
    """Beat's pass: workers silent for too long become offline."""
    older_than = timedelta(seconds=runtime.settings.worker_offline_after_s)
    with runtime.db.session() as session:
        gone = fleet_queries.mark_workers_offline(session, older_than=older_than)
        fleet_queries.delete_ended_pauses(session)
    for node in gone:
        log.warning("worker %s marked offline: no refresh for %ss", node, older_than.seconds)
    return gone


def describe(session: Any, node: str) -> dict[str, Any]:
    """A worker with the tasks it is running, for `GET /workers/<id>`."""
    worker = fleet_queries.get_worker(session, node)
    if worker is None:
        raise errors.WorkerNotFound(node)
    running = fleet_queries.running_tasks_of(session, node)
    tasks = [
        {"id": str(t.id), "project_id": t.project_id, "type": t.type, "attempt": t.attempt,
         "started_at": _iso(t.started_at), "heartbeat_at": _iso(t.heartbeat_at)}
        for t in running
    ]
    return {**worker_json(worker, len(running)), "running_tasks": tasks}


def list_all(session: Any, status: str | None = None) -> list[dict[str, Any]]:
    """Every registered worker, for `GET /workers`."""
    if status is not None and status not in set(WorkerStatus):
        allowed = ", ".join(WorkerStatus)
        raise errors.InvalidRequest(f"status must be one of {allowed}", "status")
    running = fleet_queries.count_running_by_worker(session)
    return [
        worker_json(worker, running.get(worker.id, 0))
        for worker in fleet_queries.list_workers(session, status)
    ]


def worker_json(worker: Worker, running: int) -> dict[str, Any]:
    """A worker as the API shows it; busy or idle is read from its running tasks now."""
    status = worker.status
    if status in (WorkerStatus.IDLE, WorkerStatus.BUSY):
        status = WorkerStatus.BUSY if running else WorkerStatus.IDLE
    return {
        "id": worker.id, "hostname": worker.hostname, "pid": worker.pid,
        "status": str(status), "queues": worker.queues, "concurrency": worker.concurrency,
        "providers": worker.providers, "version": worker.version, "running": running,
        "started_at": _iso(worker.started_at), "last_seen": _iso(worker.last_seen),
        "drain_requested_at": _iso(worker.drain_requested_at),
        "stop_at": _iso(worker.stop_at), "stopped_at": _iso(worker.stopped_at),
    }


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None


class Refresher(threading.Thread):
    """Keeps a worker's registry row fresh from its main process (registering it if missing)."""

    def __init__(self, runtime: Runtime, node: str, *, queues: list[str], concurrency: int) -> None:
        super().__init__(name=f"registry-{node}", daemon=True)
        self.runtime = runtime
        self.node = node
        self.queues = queues
        self.concurrency = concurrency
        self._done = threading.Event()

    def run(self) -> None:
        self._register()
        self._guarded(record_providers)
        while not self._done.wait(self.runtime.settings.worker_refresh_s):
            if not refresh(self.runtime, self.node):
                self._register()

    def _register(self) -> None:
        self._guarded(lambda rt, node: register(rt, node, queues=self.queues,
                                                concurrency=self.concurrency))

    def _guarded(self, step: Any) -> None:
        try:
            step(self.runtime, self.node)
        except Exception:  # the registry must never take the worker down; retried next refresh
            log.exception("worker registry step failed for %s", self.node)

    def finish(self) -> None:
        """Stop refreshing."""
        self._done.set()

"""Prometheus metrics, computed from PostgreSQL at scrape time.

Every figure comes from the database, so any API process answers a scrape with the same numbers:
no per-process counters to merge and no multiprocess directory to share between pods. Counters
and the duration histogram count the tasks still retained; when cleanup deletes old tasks they
drop, which Prometheus treats as a counter reset (rate() and increase() stay meaningful).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from rdev.db import fleet_queries, queries
from rdev.db.models_fleet import WorkerStatus
from rdev.runtime import Runtime
from rdev.workers import worker_json

DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)


@dataclass
class Snapshot:
    """Everything one scrape reports, read in one transaction."""

    tasks: list[tuple[str, str, int]] = field(default_factory=list)
    pending: dict[str, int] = field(default_factory=dict)
    oldest_pending_age_s: float = 0.0
    workers: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, int]] = field(default_factory=list)
    durations: list[tuple[str, list[int], float, int]] = field(default_factory=list)
    rescues: int = 0
    pauses: dict[str, float] = field(default_factory=dict)


def snapshot(runtime: Runtime) -> Snapshot:
    """Read the figures of one scrape."""
    with runtime.db.session() as session:
        oldest = queries.oldest_pending_created_at(session)
        running = fleet_queries.count_running_by_worker(session)
        workers: dict[str, int] = dict.fromkeys(WorkerStatus, 0)
        for worker in fleet_queries.list_workers(session):
            status = worker_json(worker, running.get(worker.id, 0))["status"]
            workers[status] += 1
        now = datetime.now(UTC)
        return Snapshot(
            tasks=queries.count_by_status_and_type(session),
            pending=fleet_queries.count_pending_by_type(session),
            oldest_pending_age_s=(now - oldest).total_seconds() if oldest else 0.0,
            workers=workers,
            failures=queries.count_failures_by_code(session),
            durations=fleet_queries.attempt_durations(session, DURATION_BUCKETS),
            rescues=fleet_queries.count_rescues(session),
            pauses={p.provider: (p.until - now).total_seconds()
                    for p in fleet_queries.active_pauses(session)},
        )


class DatabaseCollector(Collector):
    """A Prometheus collector that reads a fresh `Snapshot` on every scrape."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        shot = snapshot(self.runtime)
        yield from _task_families(shot)
        yield from _fleet_families(shot)


def _task_families(shot: Snapshot) -> Iterator[Metric]:
    tasks = GaugeMetricFamily("rdev_tasks", "Tasks by status and type", labels=["status", "type"])
    for status, type_, count in shot.tasks:
        tasks.add_metric([status, type_], count)
    yield tasks
    depth = GaugeMetricFamily("rdev_queue_depth", "Pending tasks by type", labels=["type"])
    for type_, count in shot.pending.items():
        depth.add_metric([type_], count)
    yield depth
    yield GaugeMetricFamily("rdev_oldest_pending_age_seconds",
                            "Age of the longest-waiting pending task",
                            value=shot.oldest_pending_age_s)
    failures = CounterMetricFamily("rdev_task_failures", "Failed tasks by error code",
                                   labels=["code"])
    for code, count in shot.failures:
        failures.add_metric([code], count)
    yield failures
    durations = HistogramMetricFamily("rdev_task_duration_seconds",
                                      "Duration of completed attempts", labels=["type"])
    for type_, counts, total, count in shot.durations:
        bounds = [str(bound) for bound in DURATION_BUCKETS]
        buckets = [*zip(bounds, counts, strict=True), ("+Inf", count)]
        durations.add_metric([type_], buckets, total)
    yield durations


def _fleet_families(shot: Snapshot) -> Iterator[Metric]:
    workers = GaugeMetricFamily("rdev_workers", "Registered workers by status", labels=["status"])
    for status, count in shot.workers.items():
        workers.add_metric([str(status)], count)
    yield workers
    yield CounterMetricFamily("rdev_rescues", "Attempts lost with their worker",
                              value=shot.rescues)
    pauses = GaugeMetricFamily("rdev_provider_pause_seconds",
                               "Seconds until a paused provider resumes", labels=["provider"])
    for provider, seconds in shot.pauses.items():
        pauses.add_metric([provider], max(0.0, seconds))
    yield pauses


def render(runtime: Runtime) -> bytes:
    """The Prometheus text exposition of rdev's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(runtime))
    return generate_latest(registry)

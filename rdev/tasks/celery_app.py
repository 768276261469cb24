"""The Celery application: delivery settings chosen for long, at-least-once agent jobs.

- acks_late + reject_on_worker_lost: a message is acknowledged only after its attempt ended,
  so a dead worker's message comes back; the Postgres claim makes the duplicate harmless.
- visibility_timeout far above the longest task: Redis would otherwise hand a still-running
  task to a second worker (celery-facts.md). Crash recovery does not wait for it: beat rescues
  tasks whose heartbeat stopped.
- prefetch of one: agent jobs are long; a worker must not sit on tasks another could start.
- priorities 0-9 on Redis with one list per level, so an urgent task overtakes a backlog.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from rdev import handlers
from rdev.config import Settings
from rdev.runtime import Runtime

TASK_MODULES = [
    "rdev.tasks.execute",
    "rdev.tasks.maintenance",
    "rdev.tasks.callbacks",
    "rdev.tasks.workspaces",
    "rdev.tasks.worker_signals",
]


def make_celery(settings: Settings) -> Celery:
    """A Celery app for these settings; connects to nothing until used."""
    app = Celery("rdev", broker=settings.broker_url, set_as_current=False)
    app.conf.update(celery_config(settings))
    app.conf.include = [
        *TASK_MODULES,
        *handlers.BUILTIN_HANDLER_MODULES,
        *settings.handler_module_names,
    ]
    app.rdev = Runtime(settings, app)
    return app


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings derived from rdev's."""
    return {
        "task_default_queue": settings.queue,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_backend": None,
        "worker_prefetch_multiplier": 1,
        "worker_send_task_events": True,
        # Flower learns of a task from the worker's received/started events; a task-sent event
        # would double the publishing cost of every enqueue.
        "task_send_sent_event": False,
        "worker_hijack_root_logger": False,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "visibility_timeout": settings.broker_visibility_timeout_s,
            "priority_steps": list(range(10)),
            "sep": ":",
            "queue_order_strategy": "priority",
            "socket_connect_timeout": settings.publish_timeout_s,
            # Redelivery after a crash is a backstop behind beat's rescue; the kombu default
            # sweep cadence (about 100 s) is kept on purpose.
            "unacked_restore_throttle": 10,
        },
        "beat_schedule": beat_schedule(settings),
        "beat_scheduler": "rdev.tasks.beat:Scheduler",
        "timezone": "UTC",
    }


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """What beat runs, and how often."""
    return {
        "rescue-stale-tasks": {
            "task": "rdev.maintenance.rescue",
            "schedule": settings.rescue_interval_s,
        },
        "publish-undispatched-tasks": {
            "task": "rdev.maintenance.redispatch",
            "schedule": settings.redispatch_interval_s,
        },
        "publish-overdue-callbacks": {
            "task": "rdev.maintenance.callbacks",
            "schedule": settings.callback_interval_s,
        },
        "mark-silent-workers-offline": {
            "task": "rdev.maintenance.workers_offline",
            "schedule": settings.worker_offline_interval_s,
        },
        "clean-up-finished-tasks": {
            "task": "rdev.maintenance.cleanup",
            "schedule": settings.cleanup_interval_s,
        },
    }


def runtime_of(app: Celery) -> Runtime:
    """The rdev runtime attached to a Celery app by `make_celery`."""
    runtime: Runtime = app.rdev
    return runtime

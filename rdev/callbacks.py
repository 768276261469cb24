"""Signed callbacks: tell a task's `callback_url` that the task reached a terminal status.

`record()` runs inside the life-cycle transaction of every terminal transition and writes an
outbox row; after commit a Celery task (`rdev.tasks.callbacks`) delivers it with `deliver()`,
and beat re-publishes deliveries whose message was lost. A slow or dead receiver costs one
bounded HTTP call per attempt, never a sleeping worker: retries are new delayed messages.

The POST body is the JSON of `payload()`. Headers:
    X-Rdev-Event: task.<status>        X-Rdev-Delivery: <callback id>
    X-Rdev-Timestamp: <unix seconds>   X-Rdev-Signature: sha256=<hex>
where the signature is HMAC-SHA256, keyed with RDEV_CALLBACK_SECRET, over
`<timestamp>.<body>` (the timestamp's ASCII digits, a dot, then the exact body bytes).
Receivers should check it and reject timestamps far from their own clock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from kombu.exceptions import KombuError
from sqlalchemy.orm import Session

from rdev.config import Settings
from rdev.db import execution_queries
from rdev.db.models import Task
from rdev.db.models_execution import Callback, CallbackAttempt
from rdev.runtime import Runtime

log = logging.getLogger(__name__)

DELIVER = "rdev.callbacks.deliver"
LEASE_SLACK_S = 30.0
SWEEP_BATCH = 200
MAX_ERROR_CHARS = 500


def payload(task: Task) -> dict[str, Any]:
    """What a callback tells the bot about its finished task."""
    return {
        "event": f"task.{task.status}",
        "task_id": str(task.id),
        "project_id": task.project_id,
        "type": task.type,
        "status": task.status,
        "error_code": task.error_code,
        "error": task.error,
        "result": task.result,
        "attempt": task.attempt,
        "retry_count": task.retry_count,
        "caller_id": task.caller_id,
        "created_at": _iso(task.created_at),
        "started_at": _iso(task.started_at),
        "completed_at": _iso(task.completed_at),
    }


def record(session: Session, task: Task) -> None:
    """Queue the callback of a task that just ended (in the transition's transaction)."""
    if task.callback_url:
        execution_queries.insert_callback(session, task.id, task.callback_url, payload(task))


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Rdev-Signature` value for a body sent at `timestamp`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def headers(settings: Settings, callback: Callback, body: bytes) -> dict[str, str]:
    """The request headers of one delivery attempt, signed when a secret is configured."""
    timestamp = str(int(time.time()))
    sent = {"Content-Type": "application/json", "User-Agent": "rdev-callbacks",
            "X-Rdev-Event": str(callback.payload.get("event", "")),
            "X-Rdev-Delivery": str(callback.id), "X-Rdev-Timestamp": timestamp}
    if settings.callback_secret:
        sent["X-Rdev-Signature"] = signature(settings.callback_secret, timestamp, body)
    return sent


def deliver(runtime: Runtime, callback_id: uuid.UUID) -> float | None:
    """Make one delivery attempt if the callback is due; seconds until the next try, or None."""
    settings = runtime.settings
    lease = timedelta(seconds=settings.callback_timeout_s + LEASE_SLACK_S)
    with runtime.db.session() as session:
        callback = execution_queries.claim_callback(session, callback_id, lease=lease)
    if callback is None:
        return None
    ok, status, error, duration_ms = _post(settings, callback)
    retry_in = None if ok else retry_delay_s(settings, callback.attempts)
    with runtime.db.session() as session:
        execution_queries.record_callback_attempt(
            session, callback, ok=ok, http_status=status, error=error, duration_ms=duration_ms,
            retry_in_s=retry_in,
        )
    log.info("callback %s of task %s, attempt %d: %s", callback.id, callback.task_id,
             callback.attempts, "delivered" if ok else error)
    return retry_in


def retry_delay_s(settings: Settings, attempts: int) -> float | None:
    """The wait before the next attempt after `attempts` failed ones; None when none is left."""
    if attempts >= settings.callback_max_attempts:
        return None
    return float(min(settings.max_backoff_s, settings.callback_backoff_s * 2 ** (attempts - 1)))


def _post(settings: Settings, callback: Callback) -> tuple[bool, int | None, str | None, int]:
    body = json.dumps(callback.payload, separators=(",", ":"), sort_keys=True).encode()
    started = time.monotonic()
    status: int | None = None
    try:
        response = httpx.post(callback.url, content=body, timeout=settings.callback_timeout_s,
                              headers=headers(settings, callback, body), follow_redirects=False)
        status = response.status_code
        error = None if response.is_success else f"HTTP {status}: {response.text[:200]}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
    duration_ms = int((time.monotonic() - started) * 1000)
    return error is None, status, error, duration_ms


def publish(runtime: Runtime, callback_id: uuid.UUID, countdown: float | None = None) -> bool:
    """Send the delivery message of one callback; False when the broker is unreachable."""
    try:
        runtime.celery.send_task(DELIVER, args=[str(callback_id)], queue=runtime.settings.queue,
                                 priority=0, countdown=countdown, retry=True,
                                 retry_policy={"max_retries": 1, "interval_start": 0.1})
    except (KombuError, OSError) as exc:
        log.warning("publishing callback %s failed, beat will retry: %s", callback_id, exc)
        return False
    return True


def send_for(runtime: Runtime, task: Task) -> None:
    """After a terminal transition committed: publish its pending callbacks at once."""
    if not task.callback_url:
        return
    with runtime.db.session() as session:
        ids = execution_queries.pending_callback_ids(session, task.id)
    sent = [callback_id for callback_id in ids if publish(runtime, callback_id)]
    with runtime.db.session() as session:
        execution_queries.mark_callbacks_dispatched(session, sent)


def sweep(runtime: Runtime) -> int:
    """Beat's pass: publish callbacks that are overdue (their message was lost or never sent)."""
    overdue_by = timedelta(seconds=runtime.settings.callback_interval_s)
    with runtime.db.session() as session:
        ids = execution_queries.lock_overdue_callbacks(session, overdue_by=overdue_by,
                                                        limit=SWEEP_BATCH)
        sent = [callback_id for callback_id in ids if publish(runtime, callback_id)]
        execution_queries.mark_callbacks_dispatched(session, sent)
    return len(sent)


def callback_json(callback: Callback, attempts: list[CallbackAttempt]) -> dict[str, Any]:
    """A callback delivery as the task's JSON shows it."""
    return {
        "id": str(callback.id),
        "url": callback.url,
        "status": callback.status,
        "attempts": [
            {"number": a.number, "at": _iso(a.started_at), "ok": a.ok,
             "http_status": a.http_status, "duration_ms": a.duration_ms, "error": a.error}
            for a in attempts
        ],
        "next_attempt_at": _iso(callback.next_attempt_at) if callback.status == "pending" else None,
        "created_at": _iso(callback.created_at),
        "completed_at": _iso(callback.completed_at),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None

"""The API's request parsing and response shapes: enqueue bodies, task JSON, list cursors.

Parsing never trusts the client: wrong types, unknown fields and out-of-range values become
`InvalidRequest` / `InvalidSpec` errors that name the field.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rdev import errors, handlers
from rdev.config import Settings
from rdev.db.models import Attempt, Task, TaskEvent
from rdev.lifecycle import NewTask

Name = Field(min_length=1, max_length=200, pattern=r"^[\w.:@/-]+$")


class EnqueueBody(BaseModel):
    """The JSON body of `POST /work/enqueue`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    project_id: str = Name
    type: str = Field(min_length=1, max_length=50)
    spec: dict[str, Any]
    priority: int = Field(5, ge=0, le=9)
    max_retries: int | None = Field(None, ge=0, le=20)
    timeout_s: int | None = Field(None, ge=1)
    callback_url: str | None = Field(None, max_length=2000, pattern=r"^https?://\S+$")
    caller_id: str | None = Field(None, min_length=1, max_length=200)
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)


def parse_enqueue(payload: Any, header_key: str | None, settings: Settings) -> NewTask:
    """Validate an enqueue request into a `NewTask`."""
    if not isinstance(payload, dict):
        raise errors.InvalidRequest("the request body must be a JSON object", "body")
    try:
        body = EnqueueBody.model_validate(payload)
    except ValidationError as exc:
        raise _request_error(exc) from None
    key = _idempotency_key(body.idempotency_key, header_key)
    timeout = body.timeout_s or settings.task_timeout_s
    if timeout > settings.max_task_timeout_s:
        raise errors.InvalidRequest(
            f"timeout_s must be at most {settings.max_task_timeout_s}", "timeout_s"
        )
    spec = handlers.validate_spec(body.type, body.spec, settings)
    fields = body.model_dump(exclude={"idempotency_key"})
    return NewTask(
        project_id=body.project_id,
        type=body.type,
        spec=spec,
        priority=body.priority,
        max_retries=settings.max_retries if body.max_retries is None else body.max_retries,
        timeout_s=timeout,
        callback_url=body.callback_url,
        caller_id=body.caller_id,
        idempotency_key=key,
        request_hash=_fingerprint(fields) if key else None,
    )


def task_json(task: Task, attempts: list[Attempt] | None = None) -> dict[str, Any]:
    """A task as the API shows it (credentials in clone URLs masked)."""
    shown: dict[str, Any] = {
        "id": str(task.id),
        "project_id": task.project_id,
        "type": task.type,
        "status": task.status,
        "spec": redact_spec(task.spec),
        "priority": task.priority,
        "caller_id": task.caller_id,
        "idempotency_key": task.idempotency_key,
        "retry_count": task.retry_count,
        "max_retries": task.max_retries,
        "attempt": task.attempt,
        "timeout_s": task.timeout_s,
        "error": task.error,
        "error_code": task.error_code,
        "result": task.result,
        "worker_id": task.worker_id,
        "callback_url": task.callback_url,
        **{name: _iso(getattr(task, name)) for name in TIMESTAMPS},
    }
    if attempts is not None:
        shown["attempts"] = [attempt_json(attempt) for attempt in attempts]
    return shown


TIMESTAMPS = (
    "created_at", "updated_at", "not_before", "dispatched_at", "started_at",
    "heartbeat_at", "completed_at", "cancel_requested_at",
)


def status_json(task: Task) -> dict[str, Any]:
    """The short form of a task for polling."""
    return {
        "id": str(task.id),
        "status": task.status,
        "error_code": task.error_code,
        "error": task.error,
        "retry_count": task.retry_count,
        "attempt": task.attempt,
        "updated_at": _iso(task.updated_at),
    }


def attempt_json(attempt: Attempt) -> dict[str, Any]:
    """One attempt of a task."""
    return {
        "attempt": attempt.attempt,
        "worker_id": attempt.worker_id,
        "started_at": _iso(attempt.started_at),
        "ended_at": _iso(attempt.ended_at),
        "outcome": attempt.outcome,
        "error_code": attempt.error_code,
        "error": attempt.error,
    }


def event_json(event: TaskEvent) -> dict[str, Any]:
    """One entry of a task's event log."""
    return {
        "seq": event.seq,
        "attempt": event.attempt,
        "kind": event.kind,
        "data": event.data,
        "created_at": _iso(event.created_at),
    }


def encode_cursor(task: Task) -> str:
    """An opaque cursor pointing just past `task` in newest-first order."""
    raw = json.dumps([task.created_at.isoformat(), str(task.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The position a cursor points at; `InvalidRequest` for anything not made by us."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, task_id = json.loads(raw)
        return datetime.fromisoformat(created_at), uuid.UUID(task_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise errors.InvalidRequest("cursor is not a cursor this API returned", "cursor") from None


def redact_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with any password or token inside its clone URL masked."""
    url = spec.get("git_clone_url")
    if not isinstance(url, str):
        return spec
    return {**spec, "git_clone_url": redact_url(url)}


def redact_url(url: str) -> str:
    """`url` with the credentials of its user-info part replaced by `***`."""
    parts = urlsplit(url)
    if "@" not in parts.netloc or not parts.scheme:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def _idempotency_key(field: str | None, header: str | None) -> str | None:
    if header is not None and not 1 <= len(header) <= 200:
        raise errors.InvalidRequest(
            "Idempotency-Key must be 1 to 200 characters", "Idempotency-Key"
        )
    if field and header and field != header:
        raise errors.InvalidRequest(
            "Idempotency-Key header and idempotency_key field differ", "idempotency_key"
        )
    return field or header


def _fingerprint(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _request_error(exc: ValidationError) -> errors.InvalidRequest:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "body"
    if field == "spec" or field.startswith("spec."):
        return handlers.spec_error(exc, prefix="")
    message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
    return errors.InvalidRequest(f"{field}: {message}", field)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None

"""The `/work` resource: enqueue, read, poll, list, cancel, stats and the event log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from rdev import callbacks, dispatch, errors, lifecycle
from rdev.db import execution_queries, fleet_queries, queries
from rdev.runtime import Runtime
from rdev.web import schemas

bp = Blueprint("work", __name__, url_prefix="/work")

MAX_PAGE = 500
DEFAULT_PAGE = 50


def runtime() -> Runtime:
    """The runtime of the app serving this request."""
    found: Runtime = current_app.extensions["rdev"]
    return found


@bp.post("/enqueue")
def enqueue() -> tuple[Response, int]:
    """Validate and store a task, then publish it; a replayed Idempotency-Key returns the first."""
    rt = runtime()
    payload = request.get_json(silent=True)
    if payload is None:
        raise errors.InvalidRequest(
            "the request body must be JSON (Content-Type: application/json)", "body"
        )
    new = schemas.parse_enqueue(payload, request.headers.get("Idempotency-Key"), rt.settings)
    with rt.db.session() as session:
        task, created = lifecycle.enqueue(session, new)
    if created:
        dispatch.send_new(rt, task)
    return jsonify(schemas.task_json(task)), 201 if created else 200


@bp.get("/<task_id>")
def get(task_id: str) -> Response:
    """A task with its attempts."""
    with runtime().db.session() as session:
        task = _task(session, task_id)
        attempts = queries.list_attempts(session, task.id)
        delivered = execution_queries.list_callbacks(session, [task.id])
    shown = schemas.task_json(task, attempts)
    shown["callbacks"] = [callbacks.callback_json(*found) for found in delivered]
    return jsonify(shown)


@bp.get("/<task_id>/status")
def status(task_id: str) -> Response:
    """The short form of a task, for polling."""
    with runtime().db.session() as session:
        return jsonify(schemas.status_json(_task(session, task_id)))


@bp.post("/<task_id>/cancel")
def cancel(task_id: str) -> Response:
    """Cancel a pending task now, or ask a running one to stop; 409 once it finished."""
    parsed = _task_id(task_id)
    with runtime().db.session() as session:
        task = lifecycle.cancel(session, parsed)
    callbacks.send_for(runtime(), task)
    return jsonify(schemas.task_json(task))


@bp.get("")
def list_tasks() -> Response:
    """Tasks newest first, filtered by project, status and type, a page at a time."""
    args = request.args
    limit = _int_arg("limit", DEFAULT_PAGE, 1, MAX_PAGE)
    where = queries.ListFilter(
        project_id=args.get("project_id") or None,
        status=_choice("status", args.get("status"), ("pending", "running", "completed",
                                                       "failed", "cancelled")),
        type=args.get("type") or None,
        before=schemas.decode_cursor(args["cursor"]) if args.get("cursor") else None,
    )
    with runtime().db.session() as session:
        page = queries.list_tasks(session, where, limit=limit + 1)
    more = len(page) > limit
    page = page[:limit]
    return jsonify({
        "tasks": [schemas.task_json(task) for task in page],
        "next_cursor": schemas.encode_cursor(page[-1]) if more else None,
    })


@bp.get("/stats")
def stats() -> Response:
    """Counts by status and type, failures by code, the oldest pending age, provider pauses."""
    with runtime().db.session() as session:
        rows = queries.count_by_status_and_type(session)
        failures = queries.count_failures_by_code(session)
        oldest = queries.oldest_pending_created_at(session)
        pauses = fleet_queries.active_pauses(session)
    by_status: dict[str, int] = {}
    by_type: dict[str, dict[str, int]] = {}
    for status_, type_, count in rows:
        by_status[status_] = by_status.get(status_, 0) + count
        by_type.setdefault(type_, {})[status_] = count
    age = (datetime.now(UTC) - oldest).total_seconds() if oldest else None
    return jsonify({
        "total": sum(by_status.values()),
        "by_status": by_status,
        "by_type": by_type,
        "failures_by_code": dict(failures),
        "oldest_pending_age_s": age,
        "provider_pauses": {
            p.provider: {"until": p.until.isoformat(), "reason": p.reason, "task_id": p.task_id}
            for p in pauses
        },
    })


@bp.get("/<task_id>/events")
def events(task_id: str) -> Response:
    """A task's event log after sequence number `after`, in order."""
    after = _int_arg("after", 0, 0, 2**62)
    limit = _int_arg("limit", MAX_PAGE, 1, MAX_PAGE)
    with runtime().db.session() as session:
        task = _task(session, task_id)
        found = queries.list_events(session, task.id, after=after, limit=limit)
    last = found[-1].seq if found else after
    return jsonify({"events": [schemas.event_json(e) for e in found], "next_after": last})


def _task(session: Any, task_id: str) -> Any:
    task = queries.get_task(session, _task_id(task_id))
    if task is None:
        raise errors.TaskNotFound(task_id)
    return task


def _task_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise errors.TaskNotFound(raw) from None


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.InvalidRequest(f"{name} must be an integer", name) from None
    if not low <= value <= high:
        raise errors.InvalidRequest(f"{name} must be between {low} and {high}", name)
    return value


def _choice(name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise errors.InvalidRequest(f"{name} must be one of {', '.join(allowed)}", name)
    return value

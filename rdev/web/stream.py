"""`GET /work/{id}/events/stream`: a task's event log as server-sent events, live.

The stream first replays the events after `Last-Event-ID` (or `?after=`, default 0), then
polls the event table every RDEV_SSE_POLL_S (0.2 s) and sends new events as they commit. Each
event's `id:` is its sequence number, so a client that reconnects resumes exactly where it
stopped. When the task is terminal and every event was sent, a final `event: end` closes the
stream; a long stream also ends after RDEV_SSE_MAX_S so that idle connections are recycled.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

from flask import Blueprint, Response, current_app, request

from rdev import errors, lifecycle
from rdev.db import queries
from rdev.runtime import Runtime
from rdev.web import schemas

bp = Blueprint("stream", __name__, url_prefix="/work")

BATCH = 500


@bp.get("/<task_id>/events/stream")
def stream(task_id: str) -> Response:
    """Server-sent events of the task's log, from `Last-Event-ID` on, until the task ends."""
    rt: Runtime = current_app.extensions["rdev"]
    parsed = _task_id(task_id)
    after = _resume_point()
    with rt.db.session() as session:
        if queries.get_task(session, parsed) is None:
            raise errors.TaskNotFound(task_id)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(events(rt, parsed, after), mimetype="text/event-stream", headers=headers)


def events(rt: Runtime, task_id: uuid.UUID, after: int) -> Iterator[str]:
    """The SSE frames of one stream (the generator the response iterates)."""
    settings = rt.settings
    yield f"retry: {int(settings.sse_poll_s * 5000)}\n\n"
    started = last_sent = time.monotonic()
    while time.monotonic() - started < settings.sse_max_s:
        with rt.db.session() as session:
            task = queries.get_task(session, task_id)
            found = queries.list_events(session, task_id, after=after, limit=BATCH)
        for event in found:
            after = event.seq
            yield frame(schemas.event_json(event))
        if found:
            last_sent = time.monotonic()
            continue
        if task is None or lifecycle.is_terminal(task):
            status = task.status if task is not None else "deleted"
            yield f"event: end\ndata: {json.dumps({'status': status, 'last_seq': after})}\n\n"
            return
        if time.monotonic() - last_sent >= settings.sse_keepalive_s:
            last_sent = time.monotonic()
            yield ": keepalive\n\n"
        time.sleep(settings.sse_poll_s)


def frame(event: dict[str, object]) -> str:
    """One event as an SSE message whose id is its sequence number."""
    return f"id: {event['seq']}\ndata: {json.dumps(event)}\n\n"


def _resume_point() -> int:
    raw = request.headers.get("Last-Event-ID") or request.args.get("after") or "0"
    try:
        value = int(raw)
    except ValueError:
        raise errors.InvalidRequest("Last-Event-ID must be an event sequence number",
                                    "Last-Event-ID") from None
    if value < 0:
        raise errors.InvalidRequest("Last-Event-ID must not be negative", "Last-Event-ID")
    return value


def _task_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise errors.TaskNotFound(raw) from None

"""Signed callbacks to a local receiver, and retries recorded when the receiver is down."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from flask.testing import FlaskClient

from rdev import callbacks
from rdev.runtime import Runtime
from tests.agents.conftest import ServerThread
from tests.execution.harness import CALLBACK_SECRET, Harness
from tests.support.processes import wait_for

pytestmark = pytest.mark.e2e


class Receiver:
    """A WSGI app that records every POST it gets and answers 204."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []

    def __call__(self, environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items()
                   if k.startswith("HTTP_")}
        self.received.append((headers, body))
        start("204 No Content", [])
        return [b""]


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_callback_is_signed_and_recorded(harness: Harness) -> None:
    """A finished task POSTs its outcome, HMAC-signed over timestamp and body, and records it."""
    receiver = Receiver()
    server = ServerThread(receiver)
    try:
        task = harness.enqueue("probe", {}, callback_url=server.url + "/hook")
        harness.wait(task["id"], "completed")
        wait_for(lambda: receiver.received, 10, "the callback")
    finally:
        server.close()
    headers, body = receiver.received[0]
    signed = headers["x-rdev-timestamp"].encode() + b"." + body
    expected = hmac.new(CALLBACK_SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-rdev-signature"], f"sha256={expected}")
    payload = json.loads(body)
    assert payload["task_id"] == task["id"]
    assert payload["status"] == "completed"
    assert payload["event"] == "task.completed"
    assert payload["project_id"] == task["project_id"]
    assert payload["result"] == {"attempt": 1, "pid": payload["result"]["pid"]}
    assert payload["completed_at"]
    assert payload["created_at"]
    shown = wait_for(lambda: _delivered(harness, task["id"]), 10, "the delivery record")
    assert shown["attempts"][0]["http_status"] == 204


def _delivered(harness: Harness, task_id: str) -> dict[str, Any] | None:
    callbacks = harness.task(task_id)["callbacks"]
    return callbacks[0] if callbacks and callbacks[0]["status"] == "delivered" else None


def test_dead_receiver_is_retried_then_recorded_failed(harness: Harness) -> None:
    """With the receiver down every attempt is recorded, then the callback fails; the task not."""
    url = f"http://127.0.0.1:{closed_port()}/hook"
    task = harness.enqueue("probe", {}, callback_url=url)
    harness.wait(task["id"], "completed")

    def failed() -> dict[str, Any] | None:
        callbacks = harness.task(task_id=task["id"])["callbacks"]
        return callbacks[0] if callbacks and callbacks[0]["status"] == "failed" else None

    callback = wait_for(failed, 20, "the callback to fail")
    assert len(callback["attempts"]) == harness.settings.callback_max_attempts
    assert all(not attempt["ok"] and attempt["error"] for attempt in callback["attempts"])
    assert [a["number"] for a in callback["attempts"]] == [1, 2, 3]
    assert harness.task(task["id"])["status"] == "completed"


def test_cancelled_pending_task_queues_a_callback(client: FlaskClient, runtime: Runtime) -> None:
    """Cancelling a pending task queues its callback in the same transaction; it delivers."""
    receiver = Receiver()
    server = ServerThread(receiver)
    settings = runtime.settings.with_overrides(callback_secret=CALLBACK_SECRET)
    try:
        task = client.post("/work/enqueue", json={
            "project_id": "p", "type": "probe", "spec": {}, "callback_url": server.url}).json
        assert task is not None
        client.post(f"/work/{task['id']}/cancel")
        pending = client.get(f"/work/{task['id']}").json["callbacks"]  # type: ignore[index]
        assert [c["status"] for c in pending] == ["pending"]
        rt = Runtime(settings, runtime.celery)
        assert callbacks.deliver(rt, uuid.UUID(pending[0]["id"])) is None
        rt.db.dispose()
    finally:
        server.close()
    payload = json.loads(receiver.received[0][1])
    assert payload["status"] == "cancelled"
    assert payload["error_code"] is None
    shown = client.get(f"/work/{task['id']}").json["callbacks"]  # type: ignore[index]
    assert shown[0]["status"] == "delivered"

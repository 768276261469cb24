"""Talking to the API the way a bot does, for tests: enqueue a task and wait for a status."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from tests.support.processes import wait_for


def enqueue(client: FlaskClient, **fields: Any) -> dict[str, Any]:
    """Enqueue a probe task (fields override the body); the created task."""
    body = {"project_id": "proj", "type": "probe", "spec": {}, **fields}
    response = client.post("/work/enqueue", json=body)
    assert response.status_code == 201, response.json
    return response.json  # type: ignore[return-value]


def task_of(client: FlaskClient, task_id: str) -> dict[str, Any]:
    """A task as `GET /work/{id}` shows it."""
    return client.get(f"/work/{task_id}").json  # type: ignore[return-value]


def wait_status(
    client: FlaskClient, task_id: str, *statuses: str, timeout: float = 30
) -> dict[str, Any]:
    """Poll the task until it reaches one of `statuses`; the task then."""

    def reached() -> dict[str, Any] | None:
        task = task_of(client, task_id)
        return task if task["status"] in statuses else None

    found: dict[str, Any] = wait_for(reached, timeout, f"task {task_id} to reach {statuses}")
    return found

"""The HTTP API against real PostgreSQL and Redis: validation, idempotency, listing, errors."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from rdev.config import Settings
from rdev.db.models import Task
from rdev.web.app import create_app

pytestmark = pytest.mark.integration

BUILD = {"git_clone_url": "https://git.example/repo.git", "prompt": "add a README"}


def body(**changes: Any) -> dict[str, Any]:
    return {"project_id": "proj", "type": "build", "spec": dict(BUILD), **changes}


def count_tasks(client: FlaskClient) -> int:
    runtime = client.application.extensions["rdev"]
    with runtime.db.session() as session:
        return int(session.execute(select(func.count()).select_from(Task)).scalar_one())


def assert_error(response: Any, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, response.json
    error = response.json["error"]
    assert error["code"] == code
    assert error["message"]
    if field is not None:
        assert error["details"]["field"] == field


def test_enqueue_returns_the_stored_task(client: FlaskClient) -> None:
    """A valid request is stored pending with defaults filled in, and published."""
    response = client.post("/work/enqueue", json=body(priority=7, caller_id="slack"))
    assert response.status_code == 201
    task = response.json
    assert (task["status"], task["priority"], task["max_retries"], task["timeout_s"]) == (
        "pending", 7, 3, 900)
    assert task["spec"]["auto_commit"] is True
    assert client.get(f"/work/{task['id']}").json["id"] == task["id"]
    assert client.get(f"/work/{task['id']}/status").json["status"] == "pending"


BAD_REQUESTS = [
    ("not json", {"data": "{nope", "content_type": "application/json"}, "INVALID_REQUEST", None),
    ("array", {"json": [1, 2]}, "INVALID_REQUEST", "body"),
    ("missing project", {"json": {"type": "build", "spec": BUILD}}, "INVALID_REQUEST",
     "project_id"),
    ("priority type", {"json": body(priority="9")}, "INVALID_REQUEST", "priority"),
    ("priority range", {"json": body(priority=10)}, "INVALID_REQUEST", "priority"),
    ("unknown field", {"json": body(colour="red")}, "INVALID_REQUEST", "colour"),
    ("timeout too long", {"json": body(timeout_s=10**7)}, "INVALID_REQUEST", "timeout_s"),
    ("negative retries", {"json": body(max_retries=-1)}, "INVALID_REQUEST", "max_retries"),
    ("bad callback", {"json": body(callback_url="ftp://x")}, "INVALID_REQUEST", "callback_url"),
    ("unknown type", {"json": body(type="paint")}, "INVALID_SPEC", "type"),
    ("spec not object", {"json": body(spec=["x"])}, "INVALID_SPEC", "spec"),
    ("missing prompt", {"json": body(spec={"git_clone_url": "https://g/r.git"})},
     "INVALID_SPEC", "spec.prompt"),
    ("blank prompt", {"json": body(spec={**BUILD, "prompt": "  "})}, "INVALID_SPEC",
     "spec.prompt"),
    ("bad clone url", {"json": body(spec={**BUILD, "git_clone_url": "not a url"})},
     "INVALID_SPEC", "spec.git_clone_url"),
    ("unknown spec field", {"json": body(spec={**BUILD, "promt": "x"})}, "INVALID_SPEC",
     "spec.promt"),
    ("max_turns type", {"json": body(spec={**BUILD, "max_turns": "5"})}, "INVALID_SPEC",
     "spec.max_turns"),
    ("test command string", {"json": body(type="test", spec={"git_clone_url": "https://g/r.git",
                                                            "command": "make test"})},
     "INVALID_SPEC", "spec.command"),
    ("deploy name", {"json": body(type="deploy", spec={"deployment": "Bad_Name", "image": "i:1"})},
     "INVALID_SPEC", "spec.deployment"),
]


@pytest.mark.parametrize(("case", "request_kwargs", "code", "field"), BAD_REQUESTS,
                         ids=[case[0] for case in BAD_REQUESTS])
def test_bad_input_is_a_4xx_naming_the_problem_and_stores_nothing(
    client: FlaskClient, case: str, request_kwargs: dict[str, Any], code: str, field: str | None
) -> None:
    """Every kind of bad enqueue input is a 400 with a code and field, and no task is stored."""
    response = client.post("/work/enqueue", **request_kwargs)
    assert_error(response, 400, code, field)
    assert count_tasks(client) == 0


def test_oversized_prompt_is_rejected(client: FlaskClient, settings: Settings) -> None:
    """A prompt over the configured size is INVALID_SPEC naming spec.prompt."""
    big = "x" * (settings.max_prompt_bytes + 1)
    response = client.post("/work/enqueue", json=body(spec={**BUILD, "prompt": big}))
    assert_error(response, 400, "INVALID_SPEC", "spec.prompt")
    assert count_tasks(client) == 0


def test_oversized_body_is_413(client: FlaskClient, settings: Settings) -> None:
    """A body far over the limit is refused before parsing, as JSON."""
    huge = "x" * (settings.max_spec_bytes + 200_000)
    response = client.post("/work/enqueue", json=body(spec={**BUILD, "prompt": huge}))
    assert_error(response, 413, "REQUEST_ENTITY_TOO_LARGE")


def test_idempotency_key_header_replays_the_first_task(client: FlaskClient) -> None:
    """A replay with the same Idempotency-Key returns 200 and the same task."""
    first = client.post("/work/enqueue", json=body(), headers={"Idempotency-Key": "abc"})
    again = client.post("/work/enqueue", json=body(), headers={"Idempotency-Key": "abc"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["id"] == first.json["id"]
    changed = client.post(
        "/work/enqueue", json=body(priority=1), headers={"Idempotency-Key": "abc"}
    )
    assert_error(changed, 422, "IDEMPOTENCY_CONFLICT")
    assert count_tasks(client) == 1


def test_unknown_and_malformed_ids_are_404(client: FlaskClient) -> None:
    """A task id that does not exist, or is not a UUID, is a 404 in the JSON error format."""
    assert_error(client.get(f"/work/{uuid.uuid4()}"), 404, "NOT_FOUND")
    assert_error(client.get("/work/not-a-uuid/status"), 404, "NOT_FOUND")
    assert_error(client.post(f"/work/{uuid.uuid4()}/cancel"), 404, "NOT_FOUND")
    assert_error(client.get("/no/such/route"), 404, "NOT_FOUND")
    assert_error(client.delete("/work/enqueue"), 405, "METHOD_NOT_ALLOWED")


def test_cancel_pending_then_conflict(client: FlaskClient) -> None:
    """Cancelling a pending task ends it; cancelling it again is a 409."""
    task = client.post("/work/enqueue", json=body()).json
    assert client.post(f"/work/{task['id']}/cancel").json["status"] == "cancelled"
    assert_error(client.post(f"/work/{task['id']}/cancel"), 409, "CONFLICT")


def test_pagination_walks_1000_tasks_without_gaps(client: FlaskClient) -> None:
    """Cursor pagination returns every one of 1,000 tasks exactly once, newest first."""
    runtime = client.application.extensions["rdev"]
    with runtime.db.session() as session:
        session.execute(Task.__table__.insert(), [
            {"id": uuid.uuid4(), "project_id": "many", "type": "test", "spec": {},
             "timeout_s": 60, "max_retries": 0, "status": "completed" if n % 2 else "pending"}
            for n in range(1000)
        ])
    seen: list[str] = []
    cursor = None
    while True:
        url = "/work?project_id=many&limit=170" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url).json
        seen.extend(task["id"] for task in page["tasks"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 1000 == len(set(seen))
    done = client.get("/work?project_id=many&status=completed&limit=500").json
    assert len(done["tasks"]) == 500
    assert done["next_cursor"] is None
    assert {t["status"] for t in done["tasks"]} == {"completed"}


@pytest.mark.parametrize("query", ["cursor=garbage", "limit=0", "limit=abc", "limit=501",
                                   "status=sleeping"])
def test_bad_list_parameters_are_400(client: FlaskClient, query: str) -> None:
    """Malformed cursors, limits and statuses are 400 naming the parameter."""
    field = query.split("=", maxsplit=1)[0]
    assert_error(client.get(f"/work?{query}"), 400, "INVALID_REQUEST", field)


def test_stats_count_by_status_and_type(client: FlaskClient) -> None:
    """Stats report counts by status and type and the oldest pending age."""
    client.post("/work/enqueue", json=body())
    cancelled = client.post("/work/enqueue", json=body(type="test", spec={
        "git_clone_url": "https://g/r.git", "command": ["pytest"]})).json
    client.post(f"/work/{cancelled['id']}/cancel")
    stats = client.get("/work/stats").json
    assert stats["total"] == 2
    assert stats["by_status"] == {"pending": 1, "cancelled": 1}
    assert stats["by_type"]["test"] == {"cancelled": 1}
    assert stats["oldest_pending_age_s"] >= 0


def test_broker_down_keeps_the_task_for_the_outbox(settings: Settings) -> None:
    """With Redis unreachable enqueue still succeeds; the task waits undispatched for beat."""
    from rdev import dispatch

    down = settings.with_overrides(broker_url="redis://127.0.0.1:1/0", publish_timeout_s=0.5)
    app = create_app(down)
    response = app.test_client().post("/work/enqueue", json=body())
    assert response.status_code == 201
    runtime = app.extensions["rdev"]
    with runtime.db.session() as session:
        task = session.get(Task, uuid.UUID(response.json["id"]))
        assert task is not None and task.dispatched_at is None
    assert dispatch.redispatch_due(runtime) == 0, "still down: nothing published"
    up = create_app(settings).extensions["rdev"]
    assert dispatch.redispatch_due(up) == 1
    with up.db.session() as session:
        assert session.get(Task, task.id).dispatched_at is not None  # type: ignore[union-attr]


def test_readiness_and_openapi(client: FlaskClient) -> None:
    """readyz is 200 with every check ok; the OpenAPI document lists the enqueue endpoint."""
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.json
    assert set(ready.json["checks"]) == {"database", "broker", "migrations"}
    assert client.get("/healthz").json == {"status": "ok"}
    document = client.get("/openapi.json").json
    assert "/work/enqueue" in document["paths"]
    assert "BuildSpec" in document["components"]["schemas"]

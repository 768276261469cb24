"""The API's OpenAPI 3.1 document, built from the same pydantic models that validate requests."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from rdev import __version__, handlers
from rdev.web import fleet
from rdev.web.schemas import EnqueueBody

bp = Blueprint("openapi", __name__)

ERROR = {"$ref": "#/components/schemas/Error"}
TASK_ID = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string",
                                                                        "format": "uuid"}}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): _json(ERROR, "error") for status in statuses}


def _op(summary: str, ok: dict[str, Any], *statuses: int, **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": {**ok, **_errors(*statuses, 503)}, **extra}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def document() -> dict[str, Any]:
    """The whole OpenAPI document."""
    task = {"$ref": "#/components/schemas/Task"}
    paths = {
        "/work/enqueue": {"post": _op(
            "Enqueue a task", {"201": _json(task, "created"), "200": _json(task, "replayed")},
            400, 413, 422,
            parameters=[{"name": "Idempotency-Key", "in": "header", "required": False,
                         "schema": {"type": "string", "maxLength": 200}}],
            requestBody={"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/EnqueueBody"}}}},
        )},
        "/work": {"get": _op(
            "List tasks, newest first", {"200": _json({"type": "object"}, "a page")}, 400,
            parameters=[_query("project_id", {"type": "string"}),
                        _query("status", {"type": "string"}), _query("type", {"type": "string"}),
                        _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
                        _query("cursor", {"type": "string"})],
        )},
        "/work/stats": {"get": _op("Queue statistics", {"200": _json({"type": "object"}, "ok")})},
        "/work/{task_id}": {"get": _op("A task and its attempts", {"200": _json(task, "ok")},
                                       404, parameters=[TASK_ID])},
        "/work/{task_id}/status": {"get": _op("A task's status", {"200": _json(task, "ok")},
                                              404, parameters=[TASK_ID])},
        "/work/{task_id}/cancel": {"post": _op("Cancel a task", {"200": _json(task, "ok")},
                                               404, 409, parameters=[TASK_ID])},
        "/work/{task_id}/events": {"get": _op(
            "A task's event log", {"200": _json({"type": "object"}, "events")}, 400, 404,
            parameters=[TASK_ID, _query("after", {"type": "integer", "minimum": 0})],
        )},
        "/work/{task_id}/events/stream": {"get": _op(
            "A task's event log as server-sent events, live; resumes from Last-Event-ID",
            {"200": {"description": "text/event-stream; each event's id is its seq",
                     "content": {"text/event-stream": {"schema": {"type": "string"}}}}},
            400, 404,
            parameters=[TASK_ID, _query("after", {"type": "integer", "minimum": 0}),
                        {"name": "Last-Event-ID", "in": "header", "required": False,
                         "schema": {"type": "integer", "minimum": 0}}],
        )},
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "ok"}}}},
        "/readyz": {"get": {"summary": "Readiness", "responses": {
            "200": {"description": "ready"}, "503": {"description": "not ready"}}}},
    }
    paths.update(fleet.openapi_paths(_op, _json))
    return {
        "openapi": "3.1.0",
        "info": {"title": "rdev", "version": __version__},
        "paths": paths,
        "components": {"schemas": _schemas()},
    }


def _schemas() -> dict[str, Any]:
    specs = {
        f"{name.capitalize()}Spec": handlers.get(name).spec_model.model_json_schema()
        for name in handlers.names()
    }
    return {
        "EnqueueBody": EnqueueBody.model_json_schema(),
        "Task": {"type": "object", "required": ["id", "project_id", "type", "status"]},
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "object", "required": ["code", "message"],
                                     "properties": {"code": {"type": "string"},
                                                    "message": {"type": "string"},
                                                    "details": {"type": "object"}}}},
        },
        **specs,
    }


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI document of this API."""
    return jsonify(document())

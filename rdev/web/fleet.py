"""Operators' resources: `/workers` (list, one, drain), `/lanes`, retention and `/metrics`."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from rdev import errors, lanes, metrics, workers
from rdev.web.work import runtime

bp = Blueprint("fleet", __name__)

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


@bp.get("/workers")
def list_workers() -> Response:
    """Registered workers, most recently seen first (filter with ?status=)."""
    with runtime().db.session() as session:
        found = workers.list_all(session, request.args.get("status") or None)
    return jsonify({"workers": found})


@bp.get("/workers/<worker_id>")
def get_worker(worker_id: str) -> Response:
    """One worker with the tasks it is running."""
    with runtime().db.session() as session:
        return jsonify(workers.describe(session, worker_id))


@bp.post("/workers/<worker_id>/drain")
def drain_worker(worker_id: str) -> tuple[Response, int]:
    """Stop a worker consuming; its running tasks finish. 202: the drain is under way."""
    return jsonify(workers.drain(runtime(), worker_id)), 202


@bp.get("/lanes")
def list_lanes() -> Response:
    """Every task type's limits in force, overrides and running count."""
    rt = runtime()
    with rt.db.session() as session:
        return jsonify({"lanes": lanes.describe(session, rt.settings)})


@bp.route("/lanes/<type_>", methods=["PUT", "PATCH"])
def update_lane(type_: str) -> Response:
    """Change a lane's `max_concurrency` / `project_concurrency` (null: the default)."""
    rt = runtime()
    changes = _body()
    with rt.db.session() as session:
        lanes.update(session, type_, changes)
    with rt.db.session() as session:
        shown = [lane for lane in lanes.describe(session, rt.settings) if lane["type"] == type_]
    return jsonify(shown[0])


@bp.get("/settings/retention")
def get_retention() -> Response:
    """How many days finished tasks are kept."""
    return jsonify(_retention())


@bp.put("/settings/retention")
def put_retention() -> Response:
    """Change the retention period at run time (`retention_days`; null: RDEV_RETENTION_DAYS)."""
    body = _body()
    if set(body) != {lanes.RETENTION_DAYS}:
        raise errors.InvalidRequest("the body must be {\"retention_days\": N}", "retention_days")
    with runtime().db.session() as session:
        lanes.set_retention_days(session, body[lanes.RETENTION_DAYS])
    return jsonify(_retention())


@bp.get("/metrics")
def prometheus() -> Response:
    """Prometheus metrics, read from PostgreSQL (the same from every API process)."""
    return Response(metrics.render(runtime()), mimetype=None, content_type=PROMETHEUS_TEXT)


def _retention() -> dict[str, Any]:
    rt = runtime()
    with rt.db.session() as session:
        days = lanes.retention_days(session, rt.settings)
    return {"retention_days": days, "default": rt.settings.retention_days}


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise errors.InvalidRequest("the request body must be a JSON object")
    return body


def openapi_paths(op: Any, json_body: Any) -> dict[str, Any]:
    """This blueprint's part of the OpenAPI document (built with openapi.py's helpers)."""
    obj = {"type": "object"}
    worker_id = {"name": "worker_id", "in": "path", "required": True, "schema": {"type": "string"}}
    type_ = {"name": "type", "in": "path", "required": True, "schema": {"type": "string"}}
    limits = {"type": "object", "properties": {
        "max_concurrency": {"type": ["integer", "null"], "minimum": 0},
        "project_concurrency": {"type": ["integer", "null"], "minimum": 0}}}
    retention = {"type": "object", "required": ["retention_days"], "properties": {
        "retention_days": {"type": ["number", "null"], "exclusiveMinimum": 0}}}
    lane_op = op("Change a lane's limits", {"200": json_body(obj, "the lane")}, 400,
                 parameters=[type_], requestBody={"required": True, "content": {
                     "application/json": {"schema": limits}}})
    return {
        "/workers": {"get": op("Registered workers", {"200": json_body(obj, "workers")}, 400,
                               parameters=[{"name": "status", "in": "query", "required": False,
                                            "schema": {"type": "string"}}])},
        "/workers/{worker_id}": {"get": op("A worker and its running tasks",
                                           {"200": json_body(obj, "ok")}, 404,
                                           parameters=[worker_id])},
        "/workers/{worker_id}/drain": {"post": op(
            "Stop a worker consuming; running tasks finish",
            {"202": json_body(obj, "draining")}, 404, parameters=[worker_id])},
        "/lanes": {"get": op("Task types' concurrency limits", {"200": json_body(obj, "ok")})},
        "/lanes/{type}": {"put": lane_op, "patch": lane_op},
        "/settings/retention": {
            "get": op("Days finished tasks are kept", {"200": json_body(retention, "ok")}),
            "put": op("Change the retention period", {"200": json_body(retention, "ok")}, 400,
                      requestBody={"required": True, "content": {
                          "application/json": {"schema": retention}}}),
        },
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {
            "200": {"description": "text exposition",
                    "content": {"text/plain": {"schema": {"type": "string"}}}},
            "503": {"description": "PostgreSQL unavailable"}}}},
    }

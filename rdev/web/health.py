"""Liveness and readiness endpoints: `/healthz` (the process answers) and `/readyz`."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from rdev import health
from rdev.web.work import runtime

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The API process is alive; checks no dependency."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """200 when PostgreSQL, the broker and the schema are ready; 503 naming what is not."""
    checks = health.readiness(runtime())
    ready = all(check.ok for check in checks)
    body = {
        "status": "ready" if ready else "unavailable",
        "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
    }
    return jsonify(body), 200 if ready else 503

"""The API's error responses: one table from exception class to HTTP status and error code.

Every error body is `{"error": {"code", "message", "details"}}`. A 5xx is a bug, except 503,
which says a dependency (PostgreSQL, the broker) is down and the client may retry.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from rdev import errors

log = logging.getLogger(__name__)

#: exception class -> (HTTP status, error code); the first matching class wins.
STATUS_BY_ERROR: list[tuple[type[errors.RdevError], int, str]] = [
    (errors.InvalidSpec, 400, "INVALID_SPEC"),
    (errors.InvalidRequest, 400, "INVALID_REQUEST"),
    (errors.TaskNotFound, 404, "NOT_FOUND"),
    (errors.WorkerNotFound, 404, "NOT_FOUND"),
    (errors.InvalidTransition, 409, "CONFLICT"),
    (errors.IdempotencyConflict, 422, "IDEMPOTENCY_CONFLICT"),
    (errors.ServiceUnavailable, 503, "UNAVAILABLE"),
]


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> tuple[Response, int]:
    """A JSON error body with its status."""
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return jsonify(body), status


def _rdev_error(exc: errors.RdevError) -> tuple[Response, int]:
    for cls, status, code in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            details = _details(exc)
            response = error_response(status, code, str(exc), details)
            if status == 503:
                response[0].headers["Retry-After"] = "5"
            return response
    log.exception("unmapped rdev error", exc_info=exc)
    return error_response(500, "INTERNAL", "internal error")


def _details(exc: errors.RdevError) -> dict[str, Any]:
    if isinstance(exc, errors.InvalidRequest) and exc.field:
        return {"field": exc.field}
    if isinstance(exc, errors.InvalidTransition):
        return {"status": exc.status}
    if isinstance(exc, errors.IdempotencyConflict):
        return {"task_id": exc.task_id}
    return {}


def _http_error(exc: HTTPException) -> tuple[Response, int]:
    status = exc.code or 500
    code = exc.name.upper().replace(" ", "_")
    return error_response(status, code, exc.description or exc.name)


def _unexpected(exc: Exception) -> tuple[Response, int]:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "INTERNAL", "internal error")


def register(app: Flask) -> None:
    """Install the JSON error handlers on `app`."""
    app.register_error_handler(errors.RdevError, _rdev_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)

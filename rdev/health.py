"""Health checks shared by `/readyz`, `rdev healthcheck` and the Helm probes.

Each check answers within a few seconds and never raises: a failure is a `Check` with ok=False
and the reason, so operators read why a component is not ready.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from rdev.db import migrate
from rdev.runtime import Runtime

TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Check:
    """The outcome of one health check."""

    name: str
    ok: bool
    detail: str = "ok"


def check_database(runtime: Runtime) -> Check:
    """PostgreSQL answers a query."""
    try:
        with runtime.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        return Check("database", False, _reason(exc))
    return Check("database", True)


def check_migrations(runtime: Runtime) -> Check:
    """The schema is at the newest migration the code knows."""
    try:
        current = migrate.current_revision(runtime.db.engine)
    except Exception as exc:
        return Check("migrations", False, _reason(exc))
    head = migrate.head_revision()
    if current != head:
        behind = f"schema at {current}, code needs {head}: rdev db upgrade"
        return Check("migrations", False, behind)
    return Check("migrations", True, f"at {head}")


def check_broker(runtime: Runtime) -> Check:
    """The Celery broker accepts a connection."""
    try:
        with runtime.celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=TIMEOUT_S)
    except Exception as exc:
        return Check("broker", False, _reason(exc))
    return Check("broker", True)


def check_worker(runtime: Runtime, node: str) -> Check:
    """The Celery worker `node` answers a ping through the broker."""
    try:
        replies = runtime.celery.control.ping(destination=[node], timeout=TIMEOUT_S)
    except Exception as exc:
        return Check("worker", False, _reason(exc))
    if not any(node in reply for reply in replies):
        return Check("worker", False, f"{node} did not answer a ping")
    return Check("worker", True, node)


def readiness(runtime: Runtime) -> list[Check]:
    """Everything the API needs before it may serve."""
    database = check_database(runtime)
    checks = [database, check_broker(runtime)]
    if database.ok:
        checks.append(check_migrations(runtime))
    return checks


def _reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"

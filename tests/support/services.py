"""Access to the machine's PostgreSQL and Redis for integration tests: throwaway databases.

Locally a missing service skips the tests that need it; in CI (CI=true) it fails them.
"""

from __future__ import annotations

import os
import uuid

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get("RDEV_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("RDEV_TEST_REDIS", "redis://127.0.0.1:6379")
#: Redis database numbers owned by the integration tests (the deploy tests use 13)
REDIS_DB = 14


def require(service: str, problem: Exception) -> None:
    """Skip locally, fail in CI, when a service the test needs is down."""
    message = f"{service} is not reachable: {problem}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def admin_engine():  # type: ignore[no-untyped-def]
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


def database_url(name: str) -> str:
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def create_database(name: str, template: str | None = None) -> str:
    engine = admin_engine()
    with engine.connect() as connection:
        clause = f" TEMPLATE {template}" if template else ""
        connection.execute(text(f'CREATE DATABASE "{name}"{clause}'))
    engine.dispose()
    return database_url(name)


def drop_database(name: str) -> None:
    engine = admin_engine()
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def redis_url(db: int = REDIS_DB) -> str:
    return f"{REDIS_URL}/{db}"


def ping_redis(db: int = REDIS_DB) -> None:
    client = redis.Redis.from_url(redis_url(db), socket_connect_timeout=2)
    client.ping()
    client.close()


def delete_queue(name: str, db: int = REDIS_DB) -> None:
    """Remove a test queue's lists (one per priority level) from Redis."""
    client = redis.Redis.from_url(redis_url(db))
    keys = list(client.scan_iter(match=f"{name}*"))
    if keys:
        client.delete(*keys)
    client.close()


def flush_redis(db: int) -> None:
    """Empty a whole Redis database: only for databases a test owns outright."""
    client = redis.Redis.from_url(redis_url(db))
    client.flushdb()
    client.close()

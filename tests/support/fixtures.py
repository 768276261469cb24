"""Pytest fixtures for tests against the real PostgreSQL and Redis (integration and e2e tiers).

The schema is built once per session by `alembic upgrade head` into a template database; each
test gets its own `CREATE DATABASE ... TEMPLATE` copy and a flushed Redis database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy.exc
from flask.testing import FlaskClient

from rdev.config import Settings
from rdev.db import migrate
from rdev.runtime import Runtime
from rdev.tasks.celery_app import make_celery
from rdev.web.app import create_app
from tests.support import services

FAST = {
    "heartbeat_s": 0.5,
    "stale_after_s": 3.0,
    "redispatch_after_s": 5.0,
    "rescue_interval_s": 1.0,
    "redispatch_interval_s": 1.0,
    "retry_backoff_s": 0.2,
    "rate_limit_backoff_s": 0.5,
    "max_backoff_s": 5.0,
    "handler_modules": "tests.support.probe",
}


@pytest.fixture(scope="session")
def template_database() -> Iterator[str]:
    """A database migrated to head, the template of every test's database."""
    name = services.unique_name("rdev_tpl")
    try:
        url = services.create_database(name)
    except sqlalchemy.exc.OperationalError as exc:
        services.require("PostgreSQL", exc)
    migrate.upgrade(url)
    yield name
    services.drop_database(name)


@pytest.fixture
def database_url(template_database: str) -> Iterator[str]:
    """A fresh copy of the migrated database for this test."""
    name = services.unique_name("rdev_t")
    url = services.create_database(name, template=template_database)
    yield url
    services.drop_database(name)


@pytest.fixture
def broker_url() -> str:
    """The tests' Redis database (shared: isolation comes from each test's own queue)."""
    try:
        services.ping_redis()
    except Exception as exc:
        services.require("Redis", exc)
    return services.redis_url()


@pytest.fixture
def queue(broker_url: str) -> Iterator[str]:
    """A queue name of this test's own, so concurrent test runs never take each other's tasks."""
    name = services.unique_name("rdev_q")
    yield name
    services.delete_queue(name)


@pytest.fixture
def settings(database_url: str, broker_url: str, queue: str, tmp_path: Path) -> Settings:
    """Settings pointing at this test's database, Redis queue, with fast life-cycle timings."""
    return Settings(
        database_url=database_url, broker_url=broker_url, queue=queue,
        data_dir=tmp_path / "data", **FAST,
    )


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    """The runtime a worker or the API would build from these settings."""
    app = make_celery(settings)
    built: Runtime = app.rdev
    yield built
    built.db.dispose()
    app.close()


@pytest.fixture
def client(settings: Settings) -> Iterator[FlaskClient]:
    """A test client of the real API app, talking to the real database and broker."""
    app = create_app(settings)
    yield app.test_client()
    app.extensions["rdev"].db.dispose()
    app.extensions["rdev"].celery.close()

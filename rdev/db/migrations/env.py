"""Alembic environment: the URL comes from rdev's settings unless the caller passed a connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from rdev.config import Settings
from rdev.db.engine import make_engine
from rdev.db.metadata import metadata

target_metadata = metadata


def run_with(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations() -> None:
    given = context.config.attributes.get("connection")
    if given is not None:
        run_with(given)
        return
    url = context.config.attributes.get("database_url") or Settings.from_env().database_url
    engine = make_engine(Settings.from_env().with_overrides(database_url=url))
    with engine.connect() as connection:
        run_with(connection)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("rdev migrations run online only: rdev db upgrade")
run_migrations()

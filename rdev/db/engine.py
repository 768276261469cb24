"""Engines and sessions: one connection pool per process, built from Settings on first use.

Nothing connects at import. Celery's prefork pool forks children after the parent may have
opened connections; `Database.session()` notices a new PID and builds a fresh pool, so no
connection is ever shared across processes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from rdev.config import Settings
from rdev.errors import ServiceUnavailable


def make_engine(settings: Settings) -> Engine:
    """An engine with a small, self-healing pool.

    No pre-ping: it would cost a round trip on every checkout, a tenth of a worker's time per
    task. After a PostgreSQL restart the first statement on a dead connection fails, SQLAlchemy
    then discards every pooled connection of that age, and callers retry (`ServiceUnavailable`).
    """
    return create_engine(
        settings.database_url,
        pool_pre_ping=False,
        pool_size=5,
        max_overflow=10,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5, "application_name": "rdev"},
    )


class Database:
    """A process-local engine and session factory for one set of settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pid = -1
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None or self._pid != os.getpid():
            self._engine = make_engine(self.settings)
            self._sessions = sessionmaker(self._engine, expire_on_commit=False)
            self._pid = os.getpid()
        return self._engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error.

        A lost or refused connection is raised as `errors.ServiceUnavailable`.
        """
        self.engine  # noqa: B018 (builds the per-process pool on first use)
        assert self._sessions is not None
        session = self._sessions()
        try:
            yield session
            session.commit()
        except OperationalError as exc:
            session.rollback()
            raise ServiceUnavailable("database", _first_line(exc)) from exc
        except DBAPIError as exc:
            session.rollback()
            if exc.connection_invalidated:
                raise ServiceUnavailable("database", _first_line(exc)) from exc
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        """Close every pooled connection of this process."""
        if self._engine is not None and self._pid == os.getpid():
            self._engine.dispose()
        self._engine = None


def _first_line(exc: Exception) -> str:
    lines = str(getattr(exc, "orig", exc)).strip().splitlines()
    return lines[0] if lines else type(exc).__name__

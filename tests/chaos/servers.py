"""Throwaway Redis and PostgreSQL servers that a chaos test owns and may kill and restart.

The machine's own servers are shared with other runs and are never stopped or flushed; these
run from a temporary directory on a free port, as the test's own child processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import redis
from sqlalchemy import create_engine, text

from tests.support.processes import free_port, wait_for

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)


class OwnRedis:
    """`redis-server` on a free port without persistence: a restart loses everything."""

    def __init__(self) -> None:
        self.port = free_port()
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--daemonize", "no"]
        self.popen = subprocess.Popen(argv, stdout=subprocess.DEVNULL, start_new_session=True)
        wait_for(self._answers, 10, "redis-server")

    def kill(self) -> None:
        """SIGKILL the server: every message in it is gone."""
        if self.popen is not None:
            self.popen.kill()
            self.popen.wait(timeout=10)
            self.popen = None

    def flushall(self) -> None:
        client = redis.Redis.from_url(self.url)
        client.flushall()
        client.close()

    def _answers(self) -> bool:
        try:
            client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
            return bool(client.ping())
        except redis.RedisError:
            return False


class OwnPostgres:
    """A PostgreSQL cluster in a temporary directory on a free port (run as `postgres` if root)."""

    def __init__(self) -> None:
        if PG_BIN is None:
            raise RuntimeError("PostgreSQL binaries not found under /usr/lib/postgresql")
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="rdev-chaos-pg-"))
        self.data = self.root / "data"
        self.popen: subprocess.Popen[bytes] | None = None
        self.user = "postgres" if os.geteuid() == 0 else None
        self.root.chmod(0o777)
        self._run([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                   "--auth=trust", "--encoding=utf8"])

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        argv = [str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port),
                "-h", "127.0.0.1", "-k", str(self.root), "-c", "fsync=off",
                "-c", "max_connections=200"]
        log = open(self.root / "postgres.log", "ab")  # noqa: SIM115 (inherited by the child)
        self.popen = subprocess.Popen(argv, user=self.user, stdout=log, stderr=log,
                                      start_new_session=True)
        log.close()
        wait_for(self._answers, 30, "own postgres")

    def stop(self) -> None:
        """Fast shutdown: clients are disconnected, committed data is kept."""
        if self.popen is not None:
            self.popen.send_signal(signal.SIGINT)
            self.popen.wait(timeout=30)
            self.popen = None

    def destroy(self) -> None:
        if self.popen is not None:
            self.popen.kill()
            self.popen.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self, name: str) -> str:
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.url(name)

    def _answers(self) -> bool:
        engine = create_engine(self.url(), connect_args={"connect_timeout": 1})
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except Exception:
            return False
        finally:
            engine.dispose()

    def _run(self, argv: list[str]) -> None:
        subprocess.run(argv, user=self.user, check=True, capture_output=True, cwd=self.root)

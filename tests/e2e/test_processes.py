"""rdev's own commands as operators run them: Flower, `rdev healthcheck`, `rdev up`."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from rdev.config import Settings
from tests.support.processes import (
    BIN,
    Process,
    environment,
    free_port,
    start_worker,
    wait_for,
)

pytestmark = pytest.mark.e2e


def test_flower_api_lists_the_running_worker(settings: Settings, tmp_path: Path) -> None:
    """`celery -A rdev flower` shows rdev's worker and its registered tasks through its API."""
    worker = start_worker(settings, tmp_path, "flowered")
    port = free_port()
    flower = Process(
        [str(BIN / "celery"), "-A", "rdev", "flower", "--address=127.0.0.1", f"--port={port}"],
        environment(settings, FLOWER_UNAUTHENTICATED_API="true"), tmp_path / "flower.log",
    )
    try:
        def listed() -> dict | None:
            try:
                workers = httpx.get(f"http://127.0.0.1:{port}/api/workers", timeout=2).json()
            except (httpx.HTTPError, ValueError):
                return None
            return next((info for name, info in workers.items()
                         if name.startswith(f"flowered-{settings.queue}@")), None)

        info = wait_for(listed, 45, "Flower to list the worker", every=0.5)
    finally:
        flower.stop()
        worker.stop()
    assert "rdev.execute" in info["registered"]


def test_healthcheck_command_checks_database_broker_and_worker(
    settings: Settings, tmp_path: Path
) -> None:
    """`rdev healthcheck --worker` exits 0 with a live worker and 1 when the node is absent."""
    worker = start_worker(settings, tmp_path, "probed")
    env = environment(settings)
    node = f"probed-{settings.queue}@" + _hostname()
    try:
        ok = subprocess.run([str(BIN / "rdev"), "healthcheck", "--worker", "--node", node],
                            env=env, capture_output=True, text=True, timeout=60)
        missing = subprocess.run([str(BIN / "rdev"), "healthcheck", "--worker", "--node",
                                  "nobody@nowhere"], env=env, capture_output=True, text=True,
                                 timeout=60)
    finally:
        worker.stop()
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "worker: ok" in ok.stdout
    assert missing.returncode == 1
    assert "worker: FAILED" in missing.stdout


def test_rdev_up_runs_everything_embedded_and_stops_cleanly(tmp_path: Path) -> None:
    """`rdev up` starts its own PostgreSQL and Redis, serves tasks, and stops on Ctrl-C."""
    api_port, flower_port = free_port(), free_port()
    env = environment(Settings(), RDEV_FLOWER_PORT=str(flower_port),
                      RDEV_HANDLER_MODULES="tests.support.probe")
    for name in ("RDEV_DATABASE_URL", "RDEV_BROKER_URL"):
        env.pop(name)
    up = Process([str(BIN / "rdev"), "up", "--data-dir", str(tmp_path / "data"),
                  "--port", str(api_port)], env, tmp_path / "up.log")
    api = f"http://127.0.0.1:{api_port}"
    try:
        wait_for(lambda: _status(f"{api}/readyz") == 200, 90, "rdev up to be ready", every=0.5)
        task = httpx.post(f"{api}/work/enqueue", json={
            "project_id": "p", "type": "probe", "spec": {"sleep_s": 0.1}}).json()

        def done() -> bool:
            return httpx.get(f"{api}/work/{task['id']}").json()["status"] == "completed"

        wait_for(done, 60, "the task to complete", every=0.5)
        up.popen.send_signal(signal.SIGINT)
        assert up.popen.wait(timeout=60) == 0, up.output()
    finally:
        up.stop()
    output = up.output()
    assert "postgresql+psycopg2://postgres@/rdev?host=" in output
    assert "redis+socket://" in output
    assert _status(f"{api}/healthz") is None, "the API stopped with rdev up"


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None


def _hostname() -> str:
    import socket

    return socket.gethostname()

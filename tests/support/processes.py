"""Starting rdev's real processes (worker, beat, API, Flower) for tests; stopping them by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rdev.config import Settings

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a child rdev process runs with: these settings and the test probe."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RDEV_")}
    env.update(settings.environ())
    env.setdefault("RDEV_HANDLER_MODULES", "tests.support.probe")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class Process:
    """A child process in its own process group, with its output kept in a log file."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.argv = argv
        self.log = log
        self._out = open(log, "ab")  # noqa: SIM115 (closed in stop)
        self.popen = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=self._out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)

    def kill(self) -> None:
        """SIGKILL the whole process group (the worker and its pool children)."""
        self.signal_group(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, then SIGKILL if it lingers; always reaps the group."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        self.signal_group(signal.SIGKILL)
        if self.alive():
            self.popen.wait(timeout=10)
        self._out.close()


def wait_for(condition: Callable[[], object], timeout: float, what: str, every: float = 0.05):  # type: ignore[no-untyped-def]
    """Poll until `condition()` is truthy; its value, or AssertionError naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def start_worker(settings: Settings, log_dir: Path, name: str, concurrency: int = 2,
                 **env: str) -> Process:
    """`celery -A rdev worker` as production runs it, ready to consume when this returns."""
    log = log_dir / f"worker-{name}.log"
    # A node name unique across concurrent test runs: control commands address workers by it.
    node = f"{name}-{settings.queue}@%h"
    argv = [str(BIN / "celery"), "-A", "rdev", "worker", "--loglevel=INFO", "-n", node,
            f"--concurrency={concurrency}", "--without-mingle", "--without-gossip"]
    return _started(Process(argv, environment(settings, **env), log), "ready.", f"worker {name}")


def start_beat(settings: Settings, log_dir: Path) -> Process:
    """`celery -A rdev beat` with its schedule file in the test's directory."""
    argv = [str(BIN / "celery"), "-A", "rdev", "beat", "--loglevel=INFO",
            "-s", str(log_dir / "celerybeat-schedule")]
    return _started(Process(argv, environment(settings), log_dir / "beat.log"), "beat: Starting",
                    "beat")


def _started(process: Process, ready_line: str, what: str, timeout: float = 60) -> Process:
    """Wait for the process to say it is ready; stop it (no leak) if it never does."""
    try:
        wait_for(lambda: ready_line in process.output() or not process.alive(), timeout, what)
        assert process.alive(), process.output()
    except BaseException:
        process.stop()
        raise
    return process

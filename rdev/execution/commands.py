"""Running one command (git, a test command, the SDLC CLI, kubectl) for a task, killably.

Each command runs in its own process group with no shell. The caller's attempt is polled while it
runs: once the attempt is told to stop (cancel, time limit, fencing) or the command's own time
limit passes, the whole group is stopped (SIGTERM, then SIGKILL), so nothing it started outlives
it. Output (stdout and stderr merged) is kept as a bounded tail, and new output is handed to
`on_output` about once a second so that a long command shows progress in the event log.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from rdev.agents import process
from rdev.context import TaskContext

POLL_S = 0.05
OUTPUT_EVERY_S = 1.0
OUTPUT_CHUNK_CHARS = 4000
TERM_GRACE_S = 2.0
NOT_FOUND = 127


@dataclass(frozen=True)
class Completed:
    """How a command ended."""

    exit_code: int
    output: str
    duration_s: float
    timed_out: bool = False
    stopped: bool = False

    @property
    def ok(self) -> bool:
        """True when the command exited 0 on its own."""
        return self.exit_code == 0 and not (self.timed_out or self.stopped)


def run(
    ctx: TaskContext,
    argv: list[str],
    *,
    cwd: Path,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    on_output: Callable[[str], None] | None = None,
) -> Completed:
    """Run `argv` to its end, its time limit, or the attempt's stop; returns the outcome."""
    started = time.monotonic()
    tail = Tail(ctx.settings.output_tail_chars)
    try:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=dict(env) if env is not None else process.agent_env({}),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        message = f"cannot run {argv[0]}: {exc.strerror or exc}"
        return Completed(NOT_FOUND, message, time.monotonic() - started)
    reader = threading.Thread(target=tail.read, args=(proc.stdout,), daemon=True)
    reader.start()
    deadline = started + min(timeout_s, max(ctx.remaining_s(), 0.1))
    timed_out, stopped = _wait(ctx, proc, deadline, _Forward(tail, on_output))
    code = stop_group(proc)
    reader.join(timeout=TERM_GRACE_S)
    _Forward(tail, on_output).flush()
    return Completed(code, tail.text(), round(time.monotonic() - started, 3), timed_out, stopped)


def _wait(
    ctx: TaskContext, proc: subprocess.Popen[bytes], deadline: float, forward: _Forward
) -> tuple[bool, bool]:
    """Wait for the leader to exit; (timed out, stopped) when it had to be cut short."""
    while not _exited(proc.pid):
        if ctx.stopped:
            return False, True
        if time.monotonic() >= deadline:
            return True, False
        forward.maybe_flush()
        time.sleep(POLL_S)
    return False, False


class _Forward:
    """Hands a command's new output to a callback, at most once per OUTPUT_EVERY_S."""

    def __init__(self, tail: Tail, on_output: Callable[[str], None] | None) -> None:
        self.tail = tail
        self.on_output = on_output
        self.last = time.monotonic()

    def maybe_flush(self) -> None:
        if time.monotonic() - self.last >= OUTPUT_EVERY_S:
            self.flush()

    def flush(self) -> None:
        self.last = time.monotonic()
        fresh = self.tail.take_fresh(OUTPUT_CHUNK_CHARS)
        if fresh and self.on_output is not None:
            self.on_output(fresh)


def stop_group(proc: subprocess.Popen[bytes]) -> int:
    """End the command's whole group (SIGTERM, then SIGKILL) and reap it; its exit code.

    The leader is not reaped before the group is signalled, so its group id cannot have been
    reused by an unrelated process.
    """
    if not _exited(proc.pid):
        _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + TERM_GRACE_S
        while not _exited(proc.pid) and time.monotonic() < deadline:
            time.sleep(POLL_S)
    _signal_group(proc.pid, signal.SIGKILL)  # and whatever it left running in its group
    return proc.wait()


def _exited(pid: int) -> bool:
    """True once child `pid` has exited; it stays unreaped (WNOWAIT)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None
    except ChildProcessError:
        return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is already gone
        os.killpg(pgid, sig)


class Tail:
    """The last `limit` characters of a stream, collected by a reader thread."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._chunks: collections.deque[str] = collections.deque()
        self._size = 0
        self._fresh: list[str] = []
        self._lock = threading.Lock()

    def read(self, stream: IO[bytes] | None) -> None:
        """Consume `stream` to its end."""
        if stream is None:
            return
        with stream:
            for line in iter(stream.readline, b""):
                self._add(line.decode("utf-8", "replace"))

    def _add(self, text: str) -> None:
        with self._lock:
            self._chunks.append(text)
            self._fresh.append(text)
            self._size += len(text)
            while self._size - len(self._chunks[0]) >= self.limit and len(self._chunks) > 1:
                self._size -= len(self._chunks.popleft())

    def take_fresh(self, limit: int) -> str:
        """Output that arrived since the last call, cut to its last `limit` characters."""
        with self._lock:
            fresh, self._fresh = "".join(self._fresh), []
        if len(fresh) <= limit:
            return fresh
        return f"[... {len(fresh) - limit} chars skipped]\n" + fresh[-limit:]

    def text(self) -> str:
        """The collected tail."""
        with self._lock:
            return "".join(self._chunks)[-self.limit :]

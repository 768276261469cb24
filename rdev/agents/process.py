"""The only place that spawns agent processes (and the short helper commands around them).

`AgentProcess` runs one agent in its own process group and feeds its stdout, framed as NDJSON, to a
callback: lines that do not start with `{` are skipped (`[SandboxDebug] ...`), a line that does not
parse is counted and dropped (Claude Code once wrote one JSON object inside another, #49640). It
keeps the tail of stderr, enforces the idle and wall-clock timeouts, and always ends with the stop
ladder for the whole group: close stdin, wait; SIGTERM, wait; SIGKILL. The same ladder ends a
process that lingers after its final line (claude-code #25629), with the shorter `result_grace_s`
first wait.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from rdev.agents.inbox import Inbox, Stop

STDERR_TAIL_LINES = 40
_POLL_S = 0.02


def agent_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The agent's environment: the worker's own, without rdev's settings, plus `extra`.

    This is the deliberate exception to "only rdev.config reads os.environ": operators point agents
    at gateways and credentials (ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY, ...) through the worker's
    environment, which the agent must inherit. RDEV_* variables (database and broker URLs with their
    passwords) are left out because the agent runs arbitrary tools.
    """
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("RDEV_")}
    inherited.pop("CLAUDECODE", None)  # set inside a Claude Code session; the child is not nested
    return {**inherited, **extra}


class StopReason(StrEnum):
    """Why the run loop ended."""

    EXITED = "exited"
    DONE = "done"
    CANCELLED = "cancelled"
    IDLE_TIMEOUT = "idle_timeout"
    WALL_TIMEOUT = "wall_timeout"
    SPAWN_FAILED = "spawn_failed"


@dataclass(frozen=True)
class ProcessSpec:
    """How to start and bound one agent process."""

    argv: list[str]
    cwd: Path
    env: dict[str, str]
    idle_timeout_s: float
    timeout_s: float
    stdin_data: bytes = b""
    stdin_grace_s: float = 5.0
    term_grace_s: float = 5.0
    result_grace_s: float = 5.0


@dataclass
class ProcessOutcome:
    """What happened to the process."""

    reason: StopReason
    exit_code: int | None = None
    stderr_tail: str = ""
    pid: int | None = None
    bad_lines: list[str] = field(default_factory=list)


MessageHandler = Callable[[dict[str, Any], str], bool]


class AgentProcess:
    """One agent process; `run` blocks, `stop` may be called from any thread at any time."""

    def __init__(self, spec: ProcessSpec) -> None:
        self.spec = spec
        self._inbox: Inbox[bytes] = Inbox(spec.idle_timeout_s, spec.timeout_s)
        self._stopped = threading.Event()
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The process id (also its process group id) once started."""
        return self._proc.pid if self._proc else None

    def stop(self) -> None:
        """Ask the run loop to end the process with the stop ladder."""
        self._stopped.set()
        self._inbox.wake()

    def run(self, on_message: MessageHandler) -> ProcessOutcome:
        """Run to EOF, a handler returning True, `stop()` or a timeout; the group is gone after."""
        if self._stopped.is_set():
            return ProcessOutcome(StopReason.CANCELLED)
        try:
            proc = self._spawn()
        except OSError as exc:
            message = f"command not found: {self.spec.argv[0]} ({exc.strerror or exc})"
            return ProcessOutcome(StopReason.SPAWN_FAILED, stderr_tail=message)
        outcome = ProcessOutcome(StopReason.CANCELLED, pid=proc.pid)
        try:
            outcome.reason = self._loop(on_message, outcome.bad_lines)
        finally:
            first_wait = self._first_wait(outcome.reason)
            outcome.exit_code = stop_group(proc, first_wait, self.spec.term_grace_s)
            outcome.stderr_tail = "\n".join(self._stderr)
        return outcome

    def _spawn(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            self.spec.argv,
            cwd=self.spec.cwd,
            env=self.spec.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._proc = proc
        self._inbox.start()
        _daemon(self._read_stdout, proc.stdout)
        _daemon(self._read_stderr, proc.stderr)
        if proc.stdin is not None and self.spec.stdin_data:
            try:
                proc.stdin.write(self.spec.stdin_data)
                proc.stdin.flush()
            except OSError:
                pass  # the process already exited; its output says why
        return proc

    def _loop(self, on_message: MessageHandler, bad_lines: list[str]) -> StopReason:
        while True:
            if self._stopped.is_set():
                return StopReason.CANCELLED
            item = self._inbox.get()
            if isinstance(item, Stop):
                reason = _STOP_REASONS[item]
                if reason is not None:
                    return reason
                continue
            parsed = _parse(item)
            if parsed is None:
                if item.lstrip().startswith(b"{"):
                    bad_lines.append(item.decode("utf-8", "replace")[:500])
                continue
            if on_message(*parsed):
                return StopReason.DONE

    def _first_wait(self, reason: StopReason) -> float:
        if reason in (StopReason.EXITED, StopReason.DONE):
            return self.spec.result_grace_s
        return self.spec.stdin_grace_s

    def _read_stdout(self, stream: IO[bytes]) -> None:
        try:
            for line in iter(stream.readline, b""):
                self._inbox.put(line)
        except (OSError, ValueError):
            pass  # the pipe was closed under us during shutdown
        finally:
            self._inbox.finish()

    def _read_stderr(self, stream: IO[bytes]) -> None:
        try:
            for line in iter(stream.readline, b""):
                self._stderr.append(line.decode("utf-8", "replace").rstrip())
        except (OSError, ValueError):
            pass  # the pipe was closed under us during shutdown


_STOP_REASONS: dict[Stop, StopReason | None] = {
    Stop.EOF: StopReason.EXITED,
    Stop.WAKE: None,  # the loop re-checks the stop flag
    Stop.IDLE: StopReason.IDLE_TIMEOUT,
    Stop.WALL: StopReason.WALL_TIMEOUT,
}


def stop_group(proc: subprocess.Popen[Any], first_wait_s: float, term_grace_s: float) -> int:
    """The stop ladder for `proc`'s group: close stdin, SIGTERM, SIGKILL; returns the exit code.

    Each step runs only if the leader is still alive after the previous wait. The leader stays a
    zombie (not reaped) until the end, so its group id cannot be reused while the group is killed.
    """
    _close(proc.stdin)
    if not _wait_exit(proc.pid, first_wait_s):
        _signal_group(proc.pid, signal.SIGTERM)
        if not _wait_exit(proc.pid, term_grace_s):
            _signal_group(proc.pid, signal.SIGKILL)
    _signal_group(proc.pid, signal.SIGKILL)  # tool processes the leader left behind in its group
    return proc.wait()


def spawn_server(
    argv: list[str], *, cwd: Path, env: dict[str, str], log: IO[bytes]
) -> subprocess.Popen[bytes]:
    """Start a long-running agent server (`opencode serve`) in its own group, output to `log`."""
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _parse(line: bytes) -> tuple[dict[str, Any], str] | None:
    text = line.decode("utf-8", "replace").strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return (value, text) if isinstance(value, dict) else None


def _daemon(target: Callable[[IO[bytes]], None], stream: IO[bytes] | None) -> None:
    if stream is not None:
        threading.Thread(target=target, args=(stream,), daemon=True).start()


def _close(stream: IO[Any] | None) -> None:
    if stream is not None:
        with contextlib.suppress(OSError):  # a broken pipe on flush: the process is gone
            stream.close()


def has_exited(pid: int) -> bool:
    """True once child `pid` has exited; it is not reaped, so its id stays reserved."""
    return _wait_exit(pid, 0.0)


def _wait_exit(pid: int, timeout_s: float) -> bool:
    """Wait until `pid` has exited, without reaping it; True if it did within the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
                return True
        except ChildProcessError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_S)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is already empty
        os.killpg(pgid, sig)


@dataclass(frozen=True)
class CommandResult:
    """Exit code and combined output of a short helper command."""

    exit_code: int
    output: str
    timed_out: bool = False


def run_command(
    argv: list[str],
    *,
    cwd: Path | None = None,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
) -> CommandResult:
    """Run a short command (`claude --version`, git) in its own group; kill the group on timeout."""
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env) if env is not None else agent_env({}),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return CommandResult(127, f"command not found: {argv[0]} ({exc.strerror or exc})")
    try:
        output, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _signal_group(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        return CommandResult(-9, output.decode("utf-8", "replace"), timed_out=True)
    return CommandResult(proc.returncode, output.decode("utf-8", "replace"))

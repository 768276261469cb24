"""The process runner: NDJSON framing, stderr tail, timeouts, and the stop ladder for the group."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from rdev.agents import process
from rdev.agents.process import AgentProcess, ProcessSpec, StopReason
from tests.agents.conftest import live_group_members


def spec(tmp_path: Path, code: str, **limits: Any) -> ProcessSpec:
    """A spec running `code` with Python, with short ladder waits."""
    values: dict[str, Any] = {
        "idle_timeout_s": 10.0,
        "timeout_s": 20.0,
        "stdin_grace_s": 0.5,
        "term_grace_s": 0.5,
        "result_grace_s": 0.5,
        **limits,
    }
    return ProcessSpec(
        argv=[sys.executable, "-c", code], cwd=tmp_path, env=process.agent_env({}), **values
    )


def collect(proc: AgentProcess, stop_when: str | None = None) -> tuple[list[dict[str, Any]], Any]:
    """Run `proc`, collecting messages; a message with key `stop_when` ends the run."""
    seen: list[dict[str, Any]] = []

    def handle(message: dict[str, Any], raw: str) -> bool:
        seen.append(message)
        return stop_when is not None and stop_when in message

    return seen, proc.run(handle)


def test_framing_skips_noise_and_survives_broken_lines(tmp_path: Path) -> None:
    """Non-JSON lines are skipped, a broken JSON line is dropped, the rest all arrive."""
    code = (
        "import sys; w=sys.stdout.write; w('[SandboxDebug] hi\\n'); w('{\"broken\\n');"
        "w('{\"a\": 1}\\n'); w('[1, 2]\\n'); w('{\"b\": 2}')"
    )
    seen, outcome = collect(AgentProcess(spec(tmp_path, code)))
    assert seen == [{"a": 1}, {"b": 2}]
    assert outcome.reason == StopReason.EXITED
    assert outcome.exit_code == 0
    assert outcome.bad_lines == ['{"broken\n']


def test_stderr_tail_and_exit_code(tmp_path: Path) -> None:
    """The last lines of stderr and the exit code are kept."""
    code = "import sys\nfor i in range(100): print('line', i, file=sys.stderr)\nsys.exit(3)"
    _, outcome = collect(AgentProcess(spec(tmp_path, code)))
    lines = outcome.stderr_tail.splitlines()
    assert outcome.exit_code == 3
    assert len(lines) == process.STDERR_TAIL_LINES
    assert lines[-1] == "line 99"


def test_idle_timeout(tmp_path: Path) -> None:
    """No output for the idle timeout ends the run."""
    code = "import time; print('{\"a\": 1}', flush=True); time.sleep(60)"
    seen, outcome = collect(AgentProcess(spec(tmp_path, code, idle_timeout_s=0.5)))
    assert seen == [{"a": 1}]
    assert outcome.reason == StopReason.IDLE_TIMEOUT


def test_wall_clock_timeout(tmp_path: Path) -> None:
    """Steady output does not escape the wall-clock limit."""
    code = "import time\nwhile True: print('{\"tick\": 1}', flush=True); time.sleep(0.05)"
    seen, outcome = collect(AgentProcess(spec(tmp_path, code, timeout_s=1.0)))
    assert outcome.reason == StopReason.WALL_TIMEOUT
    assert len(seen) > 3


def stopped(tmp_path: Path, code: str) -> Any:
    """Start `code`, stop it once it printed its first line, return the outcome."""
    proc = AgentProcess(spec(tmp_path, code))
    started = threading.Event()
    outcomes: list[Any] = []

    def handle(message: dict[str, Any], raw: str) -> bool:
        started.set()
        return False

    worker = threading.Thread(target=lambda: outcomes.append(proc.run(handle)))
    worker.start()
    assert started.wait(10)
    proc.stop()
    worker.join(10)
    assert outcomes
    assert outcomes[0].reason == StopReason.CANCELLED
    return outcomes[0]


def test_ladder_closing_stdin_is_enough(tmp_path: Path) -> None:
    """A process that ends at stdin EOF stops at the first step, with its own exit code."""
    code = "import sys; print('{\"up\": 1}', flush=True); sys.stdin.read(); sys.exit(7)"
    assert stopped(tmp_path, code).exit_code == 7


def test_ladder_sigterm(tmp_path: Path) -> None:
    """A process that ignores stdin EOF gets SIGTERM."""
    code = "import time; print('{\"up\": 1}', flush=True); time.sleep(60)"
    assert stopped(tmp_path, code).exit_code == -15


def test_ladder_sigkill(tmp_path: Path) -> None:
    """A process that ignores SIGTERM gets SIGKILL."""
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "print('{\"up\": 1}', flush=True); time.sleep(60)"
    )
    assert stopped(tmp_path, code).exit_code == -9


def test_whole_group_is_stopped(tmp_path: Path) -> None:
    """Children the agent started in its group are gone after the run."""
    code = (
        "import subprocess, time; subprocess.Popen(['sleep', '600']);"
        "print('{\"up\": 1}', flush=True); time.sleep(60)"
    )
    outcome = stopped(tmp_path, code)
    assert outcome.pid is not None
    assert not live_group_members(outcome.pid)


def test_process_lingering_after_final_line_is_killed(tmp_path: Path) -> None:
    """When the handler says done, a process that does not exit is stopped by the ladder."""
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "print('{\"result\": 1}', flush=True); time.sleep(60)"
    )
    _seen, outcome = collect(AgentProcess(spec(tmp_path, code)), stop_when="result")
    assert outcome.reason == StopReason.DONE
    assert outcome.exit_code == -9
    assert not live_group_members(outcome.pid)


def test_stop_before_run_spawns_nothing(tmp_path: Path) -> None:
    """A process stopped before it ran never starts."""
    proc = AgentProcess(spec(tmp_path, "print('{}')"))
    proc.stop()
    _, outcome = collect(proc)
    assert outcome.reason == StopReason.CANCELLED
    assert proc.pid is None


def test_spawn_failure(tmp_path: Path) -> None:
    """A missing binary is reported, not raised."""
    missing = ProcessSpec(
        argv=[str(tmp_path / "no-such-agent")], cwd=tmp_path, env={}, idle_timeout_s=5, timeout_s=5
    )
    _, outcome = collect(AgentProcess(missing))
    assert outcome.reason == StopReason.SPAWN_FAILED
    assert "command not found" in outcome.stderr_tail


def test_handler_error_still_stops_the_process(tmp_path: Path) -> None:
    """An exception in the event handler propagates after the process group is stopped."""
    code = "import time; print('{\"up\": 1}', flush=True); time.sleep(60)"
    proc = AgentProcess(spec(tmp_path, code))

    def handle(message: dict[str, Any], raw: str) -> bool:
        raise LookupError("handler broke")

    with pytest.raises(LookupError):
        proc.run(handle)
    assert proc.pid is not None
    assert not live_group_members(proc.pid)


def test_agent_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent inherits the worker's environment minus RDEV_*, plus the request's."""
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://gateway.local")
    monkeypatch.setenv("RDEV_DATABASE_URL", "postgresql://secret@db/rdev")
    env = process.agent_env({"EXTRA": "1", "ANTHROPIC_BASE_URL": "http://override"})
    assert env["ANTHROPIC_BASE_URL"] == "http://override"
    assert env["EXTRA"] == "1"
    assert "RDEV_DATABASE_URL" not in env
    assert "PATH" in env


def test_run_command_timeout_kills_the_group(tmp_path: Path) -> None:
    """A helper command past its timeout is killed and reported as timed out."""
    started = time.monotonic()
    done = process.run_command([sys.executable, "-c", "import time; time.sleep(60)"], timeout_s=0.5)
    assert done.timed_out
    assert time.monotonic() - started < 30

"""Running task commands: output tails, time limits, and stopping the whole process group."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

from rdev.config import Settings
from rdev.context import StopReason, TaskContext
from rdev.execution import commands


def context(timeout_s: float = 30) -> TaskContext:
    """A task context whose events go nowhere."""
    return TaskContext(task_id=uuid.uuid4(), attempt=1, project_id="p", type="test", spec={},
                       timeout_s=timeout_s, settings=Settings(output_tail_chars=200),
                       worker_id="w", sink=lambda kind, data: True)


def test_output_tail_keeps_the_end(tmp_path: Path) -> None:
    """Only the last characters of a long output are kept, with the exit code."""
    done = commands.run(context(), ["sh", "-c", "seq 1 5000; exit 3"], cwd=tmp_path,
                        timeout_s=10)
    assert done.exit_code == 3
    assert not done.ok
    assert done.output.endswith("4999\n5000\n")
    assert len(done.output) <= 200


def test_new_output_is_forwarded_while_the_command_runs(tmp_path: Path) -> None:
    """Output reaches `on_output` in pieces, before the command ends, and none is lost."""
    pieces: list[tuple[float, str]] = []
    started = time.monotonic()
    done = commands.run(context(), ["sh", "-c", "echo early; sleep 1.5; echo late"],
                        cwd=tmp_path, timeout_s=10,
                        on_output=lambda text: pieces.append((time.monotonic() - started, text)))
    assert done.ok
    assert "".join(text for _, text in pieces) == "early\nlate\n"
    assert pieces[0][1] == "early\n"
    assert pieces[0][0] < 1.4


def test_missing_program_is_exit_127(tmp_path: Path) -> None:
    """A command that cannot start reports 127 and why."""
    done = commands.run(context(), ["/nonexistent/tool"], cwd=tmp_path, timeout_s=5)
    assert done.exit_code == commands.NOT_FOUND
    assert "cannot run" in done.output


def test_stop_kills_the_whole_group_at_once(tmp_path: Path) -> None:
    """Stopping the attempt ends the command and the children it started."""
    ctx = context()
    threading.Timer(0.5, ctx.stop, args=(StopReason.CANCEL,)).start()
    started = time.monotonic()
    script = "sleep 60 & echo $! > child; sleep 60; wait"
    done = commands.run(ctx, ["sh", "-c", script], cwd=tmp_path, timeout_s=30)
    assert done.stopped
    assert time.monotonic() - started < 5
    child = int((tmp_path / "child").read_text())
    deadline = time.monotonic() + 5
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(child)


def _gone(pid: int) -> bool:
    """True when `pid` no longer runs (absent, or a zombie awaiting its reaper)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1].startswith("Z")
    except FileNotFoundError:
        return True


def test_time_limit_is_reported(tmp_path: Path) -> None:
    """A command past its own limit is cut short and marked timed out."""
    done = commands.run(context(), ["sleep", "30"], cwd=tmp_path, timeout_s=0.5)
    assert done.timed_out
    assert not done.ok

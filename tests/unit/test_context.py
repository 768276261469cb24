"""The handler's view of an attempt: stop signals, callbacks and events."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from rdev.config import Settings
from rdev.context import Stopped, StopReason, TaskContext


def context(sink_answer: bool = True, timeout_s: float = 60) -> tuple[TaskContext, list]:
    seen: list[tuple[str, dict[str, Any]]] = []

    def sink(kind: str, data: dict[str, Any]) -> bool:
        seen.append((kind, data))
        return sink_answer

    ctx = TaskContext(task_id=uuid.uuid4(), attempt=1, project_id="p", type="build", spec={},
                      timeout_s=timeout_s, settings=Settings(), worker_id="w", sink=sink)
    return ctx, seen


def test_first_stop_reason_is_kept_and_callbacks_run_once() -> None:
    """A later stop does not overwrite the first reason; callbacks run exactly once."""
    ctx, _ = context()
    calls: list[str] = []
    ctx.on_stop(lambda: calls.append("a"))
    ctx.stop(StopReason.CANCEL)
    ctx.stop(StopReason.TIMEOUT)
    assert ctx.stop_reason == StopReason.CANCEL
    assert calls == ["a"]
    with pytest.raises(Stopped) as raised:
        ctx.check()
    assert raised.value.reason == StopReason.CANCEL


def test_callback_registered_after_stop_runs_at_once() -> None:
    """An adapter that registers late still gets told to stop."""
    ctx, _ = context()
    ctx.stop(StopReason.TIMEOUT)
    calls: list[int] = []
    ctx.on_stop(lambda: calls.append(1))
    assert calls == [1]


def test_wait_wakes_on_stop_from_another_thread() -> None:
    """wait() returns True as soon as another thread stops the attempt."""
    ctx, _ = context()
    threading.Timer(0.05, ctx.stop, args=(StopReason.CANCEL,)).start()
    assert ctx.wait(10) is True


def test_fenced_event_write_stops_the_attempt() -> None:
    """When the event log refuses a write, the attempt learns it was fenced off."""
    ctx, seen = context(sink_answer=False)
    ctx.emit("tool_use", {"name": "Write"})
    assert seen == [("tool_use", {"name": "Write"})]
    assert ctx.stop_reason == StopReason.FENCED


def test_remaining_time_counts_down_from_the_timeout() -> None:
    """remaining_s starts at the timeout and never goes negative."""
    ctx, _ = context(timeout_s=30)
    assert 29 < ctx.remaining_s() <= 30
    assert context(timeout_s=0)[0].remaining_s() == 0

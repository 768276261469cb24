"""What a handler sees while it runs one attempt: the task, its deadline, stop signals, events.

The worker's heartbeat thread calls `stop()` when the task is cancelled, its time is up, or the
attempt was fenced off; handlers (and the agent adapters they drive) register `on_stop`
callbacks to end their child processes at once, and call `check()` between steps.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rdev.config import Settings


class StopReason(StrEnum):
    """Why an attempt was told to stop."""

    CANCEL = "cancel"
    TIMEOUT = "timeout"
    FENCED = "fenced"
    SHUTDOWN = "shutdown"


class Stopped(Exception):
    """Raised inside a handler by `TaskContext.check()` once the attempt must stop."""

    def __init__(self, reason: StopReason) -> None:
        super().__init__(reason)
        self.reason = reason


EventSink = Callable[[str, dict[str, Any]], bool]


@dataclass
class TaskContext:
    """One attempt of one task, as its handler sees it."""

    task_id: uuid.UUID
    attempt: int
    project_id: str
    type: str
    spec: dict[str, Any]
    timeout_s: float
    settings: Settings
    worker_id: str
    sink: EventSink = field(repr=False)
    deadline: float = 0.0
    stop_reason: StopReason | None = None
    _stop_event: threading.Event = field(default_factory=threading.Event, repr=False)
    _on_stop: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.timeout_s

    def emit(self, kind: str, data: dict[str, Any] | None = None) -> None:
        """Append an event to the task's log; a fenced-off attempt is told to stop."""
        if not self.sink(kind, data or {}):
            self.stop(StopReason.FENCED)

    def remaining_s(self) -> float:
        """Seconds left before the task's time limit."""
        return max(0.0, self.deadline - time.monotonic())

    @property
    def stopped(self) -> bool:
        """True once the attempt has been told to stop."""
        return self._stop_event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking early on stop; True when stopped."""
        return self._stop_event.wait(seconds)

    def check(self) -> None:
        """Raise `Stopped` if the attempt must stop."""
        if self.stop_reason is not None:
            raise Stopped(self.stop_reason)

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Run `callback` (from another thread) when the attempt is told to stop."""
        with self._lock:
            already = self.stop_reason is not None
            if not already:
                self._on_stop.append(callback)
        if already:
            callback()

    def stop(self, reason: StopReason) -> None:
        """Tell the attempt to stop; the first reason given is the one kept."""
        with self._lock:
            if self.stop_reason is not None:
                return
            self.stop_reason = reason
            callbacks, self._on_stop = self._on_stop, []
        self._stop_event.set()
        for callback in callbacks:
            callback()

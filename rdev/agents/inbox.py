"""The waiting loop every adapter shares: items from reader threads, under idle and wall-clock
limits.

Reader threads (a process's stdout, an HTTP event stream) `put` what they read and `finish` at the
end; the run loop calls `get`, which returns the next item, or a `Stop` marker when the stream
ended, a deadline passed, or `wake` was called from another thread (how `cancel()` interrupts a
blocked wait).
"""

from __future__ import annotations

import queue
import time
from enum import StrEnum
from typing import Generic, TypeVar

T = TypeVar("T")


class Stop(StrEnum):
    """Why `Inbox.get` returned no item."""

    EOF = "eof"
    WAKE = "wake"
    IDLE = "idle"
    WALL = "wall"


class Inbox(Generic[T]):
    """A thread-safe queue whose `get` honours an idle timeout and a wall-clock deadline."""

    def __init__(self, idle_timeout_s: float, timeout_s: float) -> None:
        self.idle_timeout_s = idle_timeout_s
        self.timeout_s = timeout_s
        self._queue: queue.Queue[T | Stop] = queue.Queue()
        self.start()

    def start(self) -> None:
        """(Re)start both clocks; call when the agent actually starts."""
        self._deadline = time.monotonic() + self.timeout_s
        self._last = time.monotonic()

    def put(self, item: T) -> None:
        """Hand one item to the run loop."""
        self._queue.put(item)

    def finish(self) -> None:
        """Tell the run loop the stream has ended."""
        self._queue.put(Stop.EOF)

    def wake(self) -> None:
        """Make a blocked `get` return `Stop.WAKE` (thread-safe)."""
        self._queue.put(Stop.WAKE)

    def touch(self) -> None:
        """Count as activity for the idle timeout without delivering an item."""
        self._last = time.monotonic()

    def get(self) -> T | Stop:
        """The next item, or why there is none; items reset the idle clock."""
        while True:
            now = time.monotonic()
            idle_at = self._last + self.idle_timeout_s
            if now >= self._deadline:
                return Stop.WALL
            if now >= idle_at:
                return Stop.IDLE
            try:
                item = self._queue.get(timeout=min(self._deadline, idle_at) - now)
            except queue.Empty:
                continue
            if not isinstance(item, Stop):
                self._last = time.monotonic()
            return item

"""Reading OpenCode's `/event` bus for one session: frames to normalized events, and the outcome.

`OpenCodeStream.handle` takes one decoded SSE frame and returns True when the run is over:
`session.idle` (done), `session.error` (failed), or a stop the adapter must enforce itself, because
OpenCode retries rate limits forever (agent-protocols.md §2.5): more `retry` statuses than the
budget, or more steps than `max_turns`. Frames of other sessions are ignored. Cost and tokens are
summed over the session's assistant messages (their last `message.updated` values).
"""

from __future__ import annotations

import json
import time
from typing import Any

from rdev.agents.base import (
    AgentEvent,
    AgentResult,
    EventCallback,
    EventKind,
    as_dict,
    cancelled_result,
    failed_result,
)
from rdev.agents.classify import UNKNOWN_FAILURE, Classification, Signals, classify
from rdev.codes import ErrorCode


class OpenCodeStream:
    """The state of one OpenCode session run, fed frame by frame."""

    def __init__(
        self, session_id: str, on_event: EventCallback, *, retry_budget: int, max_turns: int | None
    ) -> None:
        self.session_id = session_id
        self.on_event = on_event
        self.retry_budget = retry_budget
        self.max_turns = max_turns
        self.idle = False
        self.failure: tuple[Classification, str] | None = None
        self.retries = 0
        self.steps = 0
        self._messages: dict[str, dict[str, Any]] = {}
        self._texts: dict[str, tuple[str, str]] = {}
        self._seen: set[str] = set()

    def handle(self, frame: dict[str, Any]) -> bool:
        """Process one bus event; True when the run is over."""
        props = as_dict(frame.get("properties"))
        if _session_of(props) != self.session_id:
            return False
        raw = json.dumps(frame)
        kind = frame.get("type")
        if kind == "message.part.updated":
            return self._part(as_dict(props.get("part")), raw)
        if kind == "message.updated":
            self._message(as_dict(props.get("info")), raw)
        elif kind == "session.status":
            return self._status(as_dict(props.get("status")), raw)
        elif kind == "session.error":
            return self._error(as_dict(props.get("error")), raw)
        elif kind == "session.idle":
            self.idle = True
            return True
        return False

    def fail(self, found: Classification, message: str) -> None:
        """Record a failure decided outside the stream (timeouts, HTTP errors)."""
        if self.failure is None:
            self.failure = (found, message)

    def _emit_once(self, key: str, kind: EventKind, data: dict[str, Any], raw: str) -> None:
        if key not in self._seen:
            self._seen.add(key)
            self.on_event(AgentEvent(kind, data, raw))

    def _part(self, part: dict[str, Any], raw: str) -> bool:
        kind, part_id = part.get("type"), str(part.get("id"))
        if kind == "text" and as_dict(part.get("time")).get("end"):
            self._texts[part_id] = (str(part.get("messageID")), str(part.get("text", "")))
            self._emit_once(part_id, EventKind.TEXT, {"text": part.get("text", "")}, raw)
        elif kind == "tool":
            return self._tool(part, raw)
        elif kind == "step-start":
            self.steps += 1
            if self.max_turns is not None and self.steps > self.max_turns:
                self.fail(
                    Classification("max_turns", ErrorCode.INVALID_SPEC),
                    f"Reached maximum number of turns ({self.max_turns})",
                )
                return True
        return False

    def _tool(self, part: dict[str, Any], raw: str) -> bool:
        state = as_dict(part.get("state"))
        call = str(part.get("callID"))
        if state.get("status") in ("running", "completed", "error"):
            data = {"id": call, "name": part.get("tool"), "input": state.get("input")}
            self._emit_once("use:" + call, EventKind.TOOL_USE, data, raw)
        if state.get("status") in ("completed", "error"):
            output = (
                state.get("output") if state.get("status") == "completed" else state.get("error")
            )
            data = {
                "tool_use_id": call,
                "is_error": state.get("status") == "error",
                "output": str(output)[:2000],
            }
            self._emit_once("result:" + call, EventKind.TOOL_RESULT, data, raw)
        return False

    def _message(self, info: dict[str, Any], raw: str) -> None:
        if info.get("role") != "assistant":
            return
        self._messages[str(info.get("id"))] = info
        error = info.get("error")
        if isinstance(error, dict) and error.get("name") != "MessageAbortedError":
            self._error(error, raw)

    def _status(self, status: dict[str, Any], raw: str) -> bool:
        if status.get("type") != "retry":
            return False
        data = {k: status.get(k) for k in ("attempt", "message", "next")}
        self.on_event(AgentEvent(EventKind.RETRY, data, raw))
        self.retries += 1
        if self.retries <= self.retry_budget:
            return False
        nxt = status.get("next")
        wait = max(0.0, nxt / 1000 - time.time()) if isinstance(nxt, int | float) else None
        found = classify([str(status.get("message") or "")], Signals(retry_after_s=wait))
        self.fail(found, f"{status.get('message')} (OpenCode retry {status.get('attempt')})")
        return True

    def _error(self, error: dict[str, Any], raw: str) -> bool:
        name = str(error.get("name") or "UnknownError")
        data = as_dict(error.get("data"))
        message = str(data.get("message") or name)
        self.on_event(AgentEvent(EventKind.ERROR, {"error": name, "text": message}, raw))
        status = data.get("statusCode")
        signals = Signals(status=status if isinstance(status, int) else None, names=(name,))
        self.fail(
            classify([message, str(data.get("responseBody") or "")], signals), f"{name}: {message}"
        )
        return True

    def result(self, *, cancelled: bool) -> AgentResult:
        """The outcome; cost and tokens are the sums over the session's assistant messages."""
        tokens = [as_dict(m.get("tokens")) for m in self._messages.values()]
        cache = [as_dict(t.get("cache")) for t in tokens]
        usage: dict[str, Any] = {
            "turns": len(self._messages),
            "cost_usd": round(sum(float(m.get("cost") or 0) for m in self._messages.values()), 6),
            "input_tokens": sum(int(t.get("input") or 0) for t in tokens)
            + sum(int(c.get("read") or 0) + int(c.get("write") or 0) for c in cache),
            "output_tokens": sum(int(t.get("output") or 0) for t in tokens),
        }
        if cancelled:
            return cancelled_result(self.session_id, **usage)
        if self.failure is not None or not self.idle:
            found, message = self.failure or (UNKNOWN_FAILURE, "the session never went idle")
            return failed_result(found, message, self.session_id, **usage)
        return AgentResult(
            success=True, text=self._final_text(), session_id=self.session_id, **usage
        )

    def _final_text(self) -> str:
        """The text parts of the last assistant message that has any."""
        with_text = [message for message, _ in self._texts.values()]
        last = with_text[-1] if with_text else None
        return "\n".join(text for message, text in self._texts.values() if message == last)


def _session_of(props: dict[str, Any]) -> str | None:
    for holder in (props, props.get("part"), props.get("info")):
        if isinstance(holder, dict) and isinstance(holder.get("sessionID"), str):
            return str(holder["sessionID"])
    return None

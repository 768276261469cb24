"""Reading Claude Code's stream-json output: messages to normalized events, and the run's outcome.

`ClaudeStream.handle` takes one parsed stdout line and returns True when the run is over: at the
`result` line (the only trustworthy outcome, agent-protocols.md §1.2), or early at an `api_retry`
that cannot succeed (401, billing) or once the retry budget is spent (the CLI itself would retry ten
times over minutes). `ClaudeStream.result` then turns what was seen, plus the process outcome, into
an `AgentResult`.
"""

from __future__ import annotations

from collections.abc import Callable
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
from rdev.agents.classify import TIMED_OUT, Classification, Signals, classify
from rdev.agents.process import ProcessOutcome, StopReason
from rdev.codes import is_retryable

_TOOL_OUTPUT_CHARS = 2000


class ClaudeStream:
    """The state of one Claude Code run, fed line by line."""

    def __init__(self, on_event: EventCallback, *, retry_budget: int, binary: str) -> None:
        self.on_event = on_event
        self.retry_budget = retry_budget
        self.binary = binary
        self.session_id: str | None = None
        self.final: dict[str, Any] | None = None
        self.early: tuple[Classification, str] | None = None
        self.retries = 0
        self.error_names: list[str] = []
        self.error_texts: list[str] = []
        self.rejected = False
        self.resets_at: float | None = None
        self._handlers: dict[str, Callable[[dict[str, Any], str], bool]] = {
            "system": self._system,
            "assistant": self._assistant,
            "user": self._user,
            "rate_limit_event": self._rate_limit,
            "result": self._result,
        }

    def handle(self, message: dict[str, Any], raw: str) -> bool:
        """Process one stdout message; True when the run is over. Unknown types are ignored."""
        if isinstance(message.get("session_id"), str) and message["session_id"]:
            self.session_id = message["session_id"]
        handler = self._handlers.get(str(message.get("type")))
        return handler(message, raw) if handler else False

    def _emit(self, kind: EventKind, data: dict[str, Any], raw: str) -> None:
        self.on_event(AgentEvent(kind, data, raw))

    def _system(self, message: dict[str, Any], raw: str) -> bool:
        subtype = message.get("subtype")
        if subtype == "init":
            keys = ("session_id", "model", "cwd", "permissionMode", "claude_code_version")
            self._emit(EventKind.INIT, {k: message.get(k) for k in keys}, raw)
        elif subtype == "api_retry":
            return self._api_retry(message, raw)
        return False

    def _api_retry(self, message: dict[str, Any], raw: str) -> bool:
        keys = ("attempt", "max_retries", "retry_delay_ms", "error_status", "error")
        self._emit(EventKind.RETRY, {k: message.get(k) for k in keys}, raw)
        status, error = message.get("error_status"), message.get("error")
        delay_ms = message.get("retry_delay_ms")
        signals = Signals(
            status=status if isinstance(status, int) else None,
            no_response=status is None,
            names=(error,) if isinstance(error, str) else (),
            retry_after_s=delay_ms / 1000 if isinstance(delay_ms, int | float) else None,
        )
        found = classify([], signals)
        self.retries += 1
        if is_retryable(found.code) and self.retries <= self.retry_budget:
            return False
        self.early = (
            found,
            f"API request failed with HTTP {status} ({error}); "
            f"stopped at retry {message.get('attempt')}",
        )
        return True

    def _assistant(self, message: dict[str, Any], raw: str) -> bool:
        texts = []
        for block in _content(message):
            if block.get("type") == "text":
                texts.append(str(block.get("text", "")))
                self._emit(EventKind.TEXT, {"text": block.get("text", "")}, raw)
            elif block.get("type") == "tool_use":
                data = {k: block.get(k) for k in ("id", "name", "input")}
                self._emit(EventKind.TOOL_USE, data, raw)
        error = message.get("error")
        if isinstance(error, str):
            self.error_names.append(error)
            self.error_texts.extend(texts)
            self._emit(EventKind.ERROR, {"error": error, "text": "\n".join(texts)}, raw)
        return False

    def _user(self, message: dict[str, Any], raw: str) -> bool:
        for block in _content(message):
            if block.get("type") == "tool_result":
                content = block.get("content")
                output = content if isinstance(content, str) else str(content)
                data = {
                    "tool_use_id": block.get("tool_use_id"),
                    "is_error": bool(block.get("is_error")),
                    "output": output[:_TOOL_OUTPUT_CHARS],
                }
                self._emit(EventKind.TOOL_RESULT, data, raw)
        return False

    def _rate_limit(self, message: dict[str, Any], raw: str) -> bool:
        info = as_dict(message.get("rate_limit_info"))
        keys = ("status", "resetsAt", "rateLimitType", "utilization")
        self._emit(EventKind.RATE_LIMIT, {k: info.get(k) for k in keys}, raw)
        if info.get("status") == "rejected":
            self.rejected = True
            resets = info.get("resetsAt")
            self.resets_at = float(resets) if isinstance(resets, int | float) else None
        return False

    def _result(self, message: dict[str, Any], raw: str) -> bool:
        self.final = message
        keys = (
            "subtype",
            "is_error",
            "num_turns",
            "total_cost_usd",
            "session_id",
            "result",
            "api_error_status",
            "terminal_reason",
        )
        self._emit(EventKind.RESULT, {k: message.get(k) for k in keys}, raw)
        return True

    def result(
        self, outcome: ProcessOutcome, *, cancelled: bool, idle_s: float, timeout_s: float
    ) -> AgentResult:
        """The run's outcome: an early stop, else the result line, else how the process ended."""
        usage = self._usage()
        if cancelled and outcome.reason == StopReason.CANCELLED:
            return cancelled_result(self.session_id, **usage)
        if self.early is not None:
            found, message = self.early
            return failed_result(found, message, self.session_id, **usage)
        if self.final is not None:
            return self._from_final(self.final, outcome, usage)
        if outcome.reason == StopReason.IDLE_TIMEOUT:
            message = f"{self.binary} printed nothing for {idle_s:g} s"
            return failed_result(TIMED_OUT, message, self.session_id, **usage)
        if outcome.reason == StopReason.WALL_TIMEOUT:
            message = f"{self.binary} ran longer than the {timeout_s:g} s limit"
            return failed_result(TIMED_OUT, message, self.session_id, **usage)
        return self._crash(outcome, usage)

    def _crash(self, outcome: ProcessOutcome, usage: dict[str, Any]) -> AgentResult:
        texts = [*self.error_texts, outcome.stderr_tail]
        found = classify(texts, self._signals())
        if outcome.reason == StopReason.SPAWN_FAILED:
            message = outcome.stderr_tail
        else:
            message = (
                f"{self.binary} exited with code {outcome.exit_code} without a result: "
                f"{_tail(outcome.stderr_tail) or '(no stderr)'}"
            )
        return failed_result(found, message, self.session_id, **usage)

    def _from_final(
        self, final: dict[str, Any], outcome: ProcessOutcome, usage: dict[str, Any]
    ) -> AgentResult:
        text = final.get("result") if isinstance(final.get("result"), str) else ""
        session_id = final.get("session_id") or self.session_id
        if final.get("subtype") == "success" and not final.get("is_error"):
            return AgentResult(success=True, text=text or "", session_id=session_id, **usage)
        errors = [str(e) for e in final.get("errors") or []]
        names = [str(final.get(k)) for k in ("subtype", "terminal_reason") if final.get(k)]
        signals = self._signals(final.get("api_error_status"), tuple(names))
        found = classify([text, *errors, *self.error_texts, outcome.stderr_tail], signals)
        message = (
            text or "; ".join(errors) or "\n".join(self.error_texts) or str(final.get("subtype"))
        )
        return failed_result(found, message, session_id, **usage)

    def _signals(self, status: object = None, names: tuple[str, ...] = ()) -> Signals:
        return Signals(
            status=status if isinstance(status, int) else None,
            names=names + tuple(self.error_names),
            rate_limit_rejected=self.rejected,
            resets_at=self.resets_at,
        )

    def _usage(self) -> dict[str, Any]:
        final = self.final or {}
        usage = as_dict(final.get("usage"))
        inputs = sum(
            _int(usage.get(k))
            for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        )
        return {
            "turns": _int(final.get("num_turns")),
            "cost_usd": float(final.get("total_cost_usd") or 0.0),
            "input_tokens": inputs,
            "output_tokens": _int(usage.get("output_tokens")),
        }


def _content(message: dict[str, Any]) -> list[dict[str, Any]]:
    body = message.get("message")
    content = body.get("content") if isinstance(body, dict) else None
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _tail(text: str, chars: int = 500) -> str:
    return text.strip()[-chars:]

"""The adapter contract: what a request, an event and a result are, and what every adapter does.

An adapter instance serves exactly one run: `run(request, on_event)` blocks until the agent is done
and returns an `AgentResult`; `cancel()` may be called from any thread at any moment (before the run
started, while it runs, after it ended) and makes `run` return a result with `cancelled=True`. The
worker gets a fresh instance per run from `rdev.agents.registry.create`.

Requests, events and results convert to and from plain JSON dicts, which is how the claudebox
sidecar carries them over HTTP.
"""

from __future__ import annotations

import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from rdev import errors
from rdev.agents.classify import Classification
from rdev.codes import ErrorCode
from rdev.config import Settings

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Session ids are UUIDs (Claude Code) or `ses_...` (OpenCode), never anything that reads as a flag.
_SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


@dataclass(frozen=True)
class AgentRequest:
    """One agent run: the prompt, where it runs, and the limits it runs under."""

    prompt: str
    cwd: Path
    model: str | None = None
    max_turns: int | None = None
    timeout_s: float = 900.0
    idle_timeout_s: float | None = None
    session_id: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    allowed_tools: tuple[str, ...] = ()
    provider_options: Mapping[str, Any] = field(default_factory=dict)

    def validate(self, max_timeout_s: float) -> None:
        """Raise `errors.InvalidSpec` naming the first field that cannot run."""
        _check(
            isinstance(self.prompt, str) and self.prompt.strip() != "",
            "prompt is required",
            "prompt",
        )
        _check(Path(self.cwd).is_dir(), f"working directory {self.cwd} does not exist", "cwd")
        _check(
            _positive(self.timeout_s) and self.timeout_s <= max_timeout_s,
            f"timeout_s must be positive and at most {max_timeout_s:g}",
            "timeout_s",
        )
        _check(
            self.idle_timeout_s is None or _positive(self.idle_timeout_s),
            "idle_timeout_s must be positive",
            "idle_timeout_s",
        )
        _check(
            self.max_turns is None or (_is_int(self.max_turns) and self.max_turns >= 1),
            "max_turns must be a positive integer",
            "max_turns",
        )
        _check(
            self.session_id is None or bool(_SESSION_ID.match(str(self.session_id))),
            "session_id is not a valid session id",
            "session_id",
        )
        _check(
            self.model is None
            or (
                isinstance(self.model, str)
                and self.model.strip() != ""
                and not self.model.startswith("-")
            ),
            "model must be a non-empty name",
            "model",
        )
        _check(
            all(
                isinstance(k, str) and _ENV_NAME.match(k) and isinstance(v, str)
                for k, v in self.env.items()
            ),
            "env must map variable names to strings",
            "env",
        )
        _check(
            all(isinstance(t, str) and t.strip() != "" for t in self.allowed_tools),
            "allowed_tools must be non-empty strings",
            "allowed_tools",
        )

    def to_json(self) -> dict[str, Any]:
        """This request as a JSON-ready dict."""
        data = asdict(self)
        data.update(
            cwd=str(self.cwd),
            env=dict(self.env),
            allowed_tools=list(self.allowed_tools),
            provider_options=dict(self.provider_options),
        )
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AgentRequest:
        """Build a request from `to_json` output; a missing or mistyped field is InvalidSpec."""
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        _check(
            not unknown,
            f"unknown request field {unknown[0] if unknown else ''!r}",
            unknown[0] if unknown else "request",
        )
        _check("prompt" in data, "prompt is required", "prompt")
        _check("cwd" in data, "cwd is required", "cwd")
        values = dict(data)
        values["cwd"] = Path(str(values["cwd"]))
        for name, kind in (("env", dict), ("provider_options", dict), ("allowed_tools", list)):
            _check(
                isinstance(values.get(name, kind()), kind),
                f"{name} must be a {kind.__name__}",
                name,
            )
        values["allowed_tools"] = tuple(values.get("allowed_tools", ()))
        return cls(**values)


def _check(ok: bool, message: str, name: str) -> None:
    if not ok:
        raise errors.InvalidSpec(message, field=name)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


class EventKind(StrEnum):
    """The normalized kinds of agent events."""

    INIT = "init"
    TEXT = "text"
    TOOL_USE = "tool_use"
    TOOL_RESULT = "tool_result"
    RETRY = "retry"
    RATE_LIMIT = "rate_limit"
    RESULT = "result"
    ERROR = "error"


@dataclass(frozen=True)
class AgentEvent:
    """One normalized event; `raw` keeps the agent's own line or frame it came from."""

    kind: EventKind
    data: dict[str, Any] = field(default_factory=dict)
    raw: str = ""

    def to_json(self) -> dict[str, Any]:
        """This event as a JSON-ready dict."""
        return {"kind": str(self.kind), "data": self.data, "raw": self.raw}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AgentEvent:
        """Rebuild an event from `to_json` output."""
        return cls(EventKind(data["kind"]), dict(data.get("data") or {}), str(data.get("raw", "")))


@dataclass(frozen=True)
class AgentResult:
    """How a run ended; `error_code` is set exactly when the run failed and was not cancelled.

    `error_kind` is the finer class from agent-protocols.md section 5 (e.g. `session_not_found`, on
    which a caller may retry with a fresh session).
    """

    success: bool
    text: str = ""
    session_id: str | None = None
    turns: int = 0
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    duration_s: float = 0.0
    error_code: ErrorCode | None = None
    error_message: str | None = None
    error_kind: str | None = None
    retry_after_s: float | None = None
    cancelled: bool = False

    def raise_for_error(self) -> None:
        """Raise `errors.TaskFailure` for a failed run (not for a cancelled one)."""
        if self.error_code is not None:
            details = {"error_kind": self.error_kind, "session_id": self.session_id}
            raise errors.TaskFailure(
                self.error_code,
                self.error_message or str(self.error_code),
                self.retry_after_s,
                details,
            )

    def to_json(self) -> dict[str, Any]:
        """This result as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AgentResult:
        """Rebuild a result from `to_json` output."""
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if values.get("error_code") is not None:
            values["error_code"] = ErrorCode(values["error_code"])
        return cls(**values)


@dataclass(frozen=True)
class Capabilities:
    """What an adapter supports beyond running a prompt."""

    streaming: bool
    resume: bool
    cancel: bool


@dataclass(frozen=True)
class Availability:
    """Whether an adapter can run on this machine right now, and why not."""

    ok: bool
    detail: str


EventCallback = Callable[[AgentEvent], None]


class AgentAdapter(ABC):
    """Runs one agent request; subclasses implement `_execute` and the two checks.

    The base class owns the one-run rule, validation, timing and the cancel flag; `_execute` polls
    `self.cancelled` or registers `on_cancel(callback)` to be interrupted, and returns the outcome.
    """

    name: ClassVar[str]
    # The `provider_options` keys this adapter understands; None accepts any (a forwarding adapter).
    options: ClassVar[frozenset[str] | None] = frozenset()

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._started = False
        self._cancel_callbacks: list[Callable[[], None]] = []

    @abstractmethod
    def capabilities(self) -> Capabilities:
        """What this provider supports."""

    @abstractmethod
    def check_available(self, timeout_s: float = 5.0) -> Availability:
        """Whether the provider can run here; answers within about `timeout_s`."""

    @abstractmethod
    def _execute(self, request: AgentRequest, on_event: EventCallback) -> AgentResult:
        """Run a validated request; `duration_s` is filled in by `run`."""

    @property
    def cancelled(self) -> bool:
        """True once `cancel()` was called."""
        return self._cancel.is_set()

    def run(self, request: AgentRequest, on_event: EventCallback) -> AgentResult:
        """Validate and run `request`, passing each event to `on_event`; returns the outcome."""
        with self._lock:
            if self._started:
                raise RuntimeError(f"{self.name} adapter already ran; create one per run")
            self._started = True
        request.validate(float(self.settings.max_task_timeout_s))
        self._check_options(request)
        started = time.monotonic()
        if self.cancelled:
            result = cancelled_result(request.session_id)
        else:
            result = self._execute(request, on_event)
        return _with_duration(result, time.monotonic() - started)

    def _check_options(self, request: AgentRequest) -> None:
        if self.options is None:
            return
        unknown = sorted(set(request.provider_options) - self.options)
        if unknown:
            raise errors.InvalidSpec(
                f"unknown {self.name} option {unknown[0]!r}", field="provider_options"
            )

    def cancel(self) -> None:
        """Stop the run (thread-safe, idempotent; harmless before the start or after the end)."""
        with self._lock:
            if self._cancel.is_set():
                return
            self._cancel.set()
            callbacks = list(self._cancel_callbacks)
        for callback in callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call `callback` (in the cancelling thread) on cancel; at once if already cancelled."""
        with self._lock:
            if not self._cancel.is_set():
                self._cancel_callbacks.append(callback)
                return
        callback()

    def idle_timeout(self, request: AgentRequest) -> float:
        """The request's idle timeout, or the configured default."""
        return request.idle_timeout_s or self.settings.agent_idle_timeout_s


def cancelled_result(session_id: str | None, **values: Any) -> AgentResult:
    """The result of a run stopped by `cancel()`."""
    return AgentResult(
        success=False, session_id=session_id, cancelled=True, error_message="cancelled", **values
    )


def as_dict(value: object) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty dict (agent output is not trusted)."""
    return value if isinstance(value, dict) else {}


def failed_result(
    found: Classification, message: str, session_id: str | None = None, **values: Any
) -> AgentResult:
    """The result of a failed run, classified as `found`."""
    return AgentResult(
        success=False,
        session_id=session_id,
        error_code=found.code,
        error_message=message[:2000],
        error_kind=found.kind,
        retry_after_s=found.retry_after_s,
        **values,
    )


def _with_duration(result: AgentResult, duration_s: float) -> AgentResult:
    return replace(result, duration_s=round(duration_s, 3))

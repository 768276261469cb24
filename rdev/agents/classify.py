"""Error classification: structured fields first, then the text table of agent-protocols.md §5.

`classify(texts, signals)` is the one function every adapter calls. Each row of `ROWS` is one class
of §5 in priority order (first match wins: `usage_limit` before `rate_limit`, because both can say
429), with the error code it maps to. Structured signals (HTTP status, the agent's error enums and
names, a rejected `rate_limit_event`) are looked up in `STATUS_KINDS` / `NAME_KINDS`; only when they
name no class are the regexes tried on the result text, error messages and stderr.

Codes and retries (rdev.codes.RETRY_POLICIES): usage_limit and rate_limit -> RATE_LIMITED (retried
at the reset / retry-after time); overloaded -> OVERLOADED (retried, long backoff); server_error,
config and anything unknown -> AGENT_ERROR (retried, bounded); timeout -> TIMEOUT (retried); auth
and billing -> AUTH_FAILED (never: an operator must fix the account); context_length ->
CONTEXT_LENGTH (never); max_turns and session_not_found -> INVALID_SPEC (never: the spec's max_turns
or session id is at fault; `error_kind` lets a caller retry a missing session with a fresh one).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rdev.codes import ErrorCode


@dataclass(frozen=True)
class Row:
    """One class of the table: its name, error code and text patterns (case-insensitive)."""

    kind: str
    code: ErrorCode
    patterns: tuple[str, ...]

    def matches(self, text: str) -> bool:
        """True when any pattern is found in `text`."""
        return any(re.search(pattern, text, re.IGNORECASE) for pattern in self.patterns)


_APOS = "[\u2019']"  # both apostrophes: the CLI prints the typographic one

ROWS: tuple[Row, ...] = (
    Row(
        "usage_limit",
        ErrorCode.RATE_LIMITED,
        (
            rf"You{_APOS}ve hit your (?:session |weekly |Opus )?limit",
            r"Claude AI usage limit reached",
            r"Quota exceeded\. Check your plan",
            r"insufficient_quota",
            r"FreeUsageLimitError",
            r"Free usage exceeded",
            rf"You{_APOS}ve hit your usage limit",
            r"RESOURCE_EXHAUSTED",
        ),
    ),
    Row(
        "rate_limit",
        ErrorCode.RATE_LIMITED,
        (
            r"API Error: Rate limit reached",
            r"Request rejected \(429\)",
            r"Server is temporarily limiting requests",
            r"rate_limit_error",
            r"\b429\b",
            r"Rate Limited",
            r"Too Many Requests",
            r"exceeded retry limit, last status: 429",
            r"\brate[ _-]?limit",
        ),
    ),
    Row(
        "overloaded",
        ErrorCode.OVERLOADED,
        (
            r"API Error: Repeated 529 Overloaded errors",
            r"\b529\b",
            r"overloaded_error",
            r"Overloaded",
            r"Selected model is at capacity",
        ),
    ),
    Row(
        "server_error",
        ErrorCode.AGENT_ERROR,
        (
            r"API Error: 5\d\d\b.*Internal server error",
            r'api_error"',
            rf"We{_APOS}re currently experiencing high demand",
        ),
    ),
    Row(
        "auth",
        ErrorCode.AUTH_FAILED,
        (
            r"Invalid API key",
            r"Not logged in · Please run /login",
            r"Please run /login",
            r"OAuth token (?:has expired|revoked)",
            r"authentication_error",
            r"\b401\b",
            r"This organization has been disabled",
            r"does not meet scope requirement",
            r"ProviderAuthError",
            r"unexpected status 401",
            r"Your access token could not be refreshed",
            r"permission_error",
        ),
    ),
    Row(
        "billing",
        ErrorCode.AUTH_FAILED,
        (
            r"Credit balance is too low",
            r"billing_error",
            r"usage_not_included",
        ),
    ),
    Row(
        "context_length",
        ErrorCode.CONTEXT_LENGTH,
        (
            r"Prompt is too long",
            r"prompt is too long: \d+ tokens > \d+ maximum",
            r"Error during compaction: Conversation too long",
            r"Request too large",
            r"MessageContextOverflowError",
            r"exceeds the context window",
            r"maximum context length is \d+ tokens",
            r"context[_ ]length[_ ]exceeded",
            r"request entity too large",
            r"input token count.*exceeds the maximum",
            r"MessageOutputLengthError",
            r"ran out of room in the model's context window",
            r"Input exceeds context window",
        ),
    ),
    Row(
        "timeout",
        ErrorCode.TIMEOUT,
        (
            r"Request timed out",
            r"API Error: Stream idle timeout - no chunks received",
            r"Unable to connect to API",
            r"ECONNREFUSED|ENOTFOUND|ECONNRESET",
            r"stream disconnected before completion",
            r"Connection failed",
            r"context deadline exceeded",
        ),
    ),
    Row(
        "max_turns",
        ErrorCode.INVALID_SPEC,
        (
            r"error_max_turns",
            r"error_max_budget_usd",
            r"Reached maximum number of turns",
        ),
    ),
    Row(
        "session_not_found",
        ErrorCode.INVALID_SPEC,
        (
            r"No conversation found with session ID",
            r"no thread with id:",
        ),
    ),
    Row(
        "config",
        ErrorCode.AGENT_ERROR,
        (
            r"requires --verbose",
            r"cannot be used with root/sudo privileges",
            r"command not found",
            r"\bENOENT\b",
        ),
    ),
    Row(
        "cancelled",
        ErrorCode.AGENT_ERROR,
        (
            r"aborted_streaming|aborted_tools",
            r"\[Request interrupted by user\]",
            r"MessageAbortedError",
        ),
    ),
)
UNKNOWN = Row("unknown", ErrorCode.AGENT_ERROR, ())
_BY_KIND = {row.kind: row for row in ROWS}

STATUS_KINDS: dict[int, str] = {
    401: "auth",
    403: "auth",
    402: "billing",
    408: "timeout",
    413: "context_length",
    429: "rate_limit",
    500: "server_error",
    502: "server_error",
    503: "server_error",
    504: "timeout",
    529: "overloaded",
}

# Claude Code `assistant.error` / `api_retry.error` enums, result subtypes and terminal reasons, and
# OpenCode error names. `invalid_request`, `unknown`, `APIError`, `UnknownError` say nothing alone.
NAME_KINDS: dict[str, str] = {
    "authentication_failed": "auth",
    "billing_error": "billing",
    "rate_limit": "rate_limit",
    "server_error": "server_error",
    "max_output_tokens": "context_length",
    "error_max_turns": "max_turns",
    "error_max_budget_usd": "max_turns",
    "max_turns": "max_turns",
    "prompt_too_long": "context_length",
    "aborted_streaming": "cancelled",
    "aborted_tools": "cancelled",
    "ProviderAuthError": "auth",
    "MessageContextOverflowError": "context_length",
    "MessageOutputLengthError": "context_length",
    "MessageAbortedError": "cancelled",
    "FreeUsageLimitError": "usage_limit",
}


@dataclass(frozen=True)
class Signals:
    """Structured fields of an agent's failure; everything optional.

    `no_response` is an API retry without an HTTP status (`api_retry.error_status: null`): the
    request timed out or the connection failed.
    """

    status: int | None = None
    no_response: bool = False
    names: tuple[str, ...] = ()
    rate_limit_rejected: bool = False
    resets_at: float | None = None
    retry_after_s: float | None = None


@dataclass(frozen=True)
class Classification:
    """The class of a failure, its error code, and when to retry if known."""

    kind: str
    code: ErrorCode
    retry_after_s: float | None = None


TIMED_OUT = Classification("timeout", ErrorCode.TIMEOUT)
UNKNOWN_FAILURE = Classification("unknown", ErrorCode.AGENT_ERROR)


def classify(
    texts: Iterable[str | None], signals: Signals | None = None, now: float | None = None
) -> Classification:
    """Classify a failure by its structured signals, else by its texts; unknown is AGENT_ERROR."""
    signals = signals or Signals()
    text = "\n".join(t for t in texts if t)
    row = _structured_row(signals) or _text_row(text) or UNKNOWN
    when = time.time() if now is None else now
    return Classification(row.kind, row.code, _retry_after(signals, text, when))


def _structured_row(signals: Signals) -> Row | None:
    kinds = [NAME_KINDS[name] for name in signals.names if name in NAME_KINDS]
    if signals.status is not None and signals.status in STATUS_KINDS:
        kinds.append(STATUS_KINDS[signals.status])
    if signals.rate_limit_rejected:
        kinds.append("usage_limit")
    if signals.no_response:
        kinds.append("timeout")
    rows = [_BY_KIND[kind] for kind in kinds]
    return min(rows, key=ROWS.index) if rows else None


def _text_row(text: str) -> Row | None:
    return next((row for row in ROWS if row.matches(text)), None) if text else None


_EPOCH = re.compile(r"usage limit reached[|](\d{10})", re.IGNORECASE)
_RESETS = re.compile(r"resets (\d{1,2})(?::(\d{2}))?\s*(am|pm)(?:\s*\(([^)]+)\))?", re.IGNORECASE)


def _retry_after(signals: Signals, text: str, now: float) -> float | None:
    if signals.resets_at is not None:
        return max(0.0, signals.resets_at - now)
    if signals.retry_after_s is not None:
        return max(0.0, signals.retry_after_s)
    epoch = _EPOCH.search(text)
    if epoch:
        return max(0.0, int(epoch.group(1)) - now)
    resets = _RESETS.search(text)
    return _until_clock(resets, now) if resets else None


def _until_clock(match: re.Match[str], now: float) -> float | None:
    """Seconds until the next `resets 3pm (Area/City)`; None for an unknown time zone."""
    hour, minute = int(match.group(1)) % 12, int(match.group(2) or 0)
    hour += 12 if match.group(3).lower() == "pm" else 0
    try:
        zone = ZoneInfo((match.group(4) or "UTC").strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None
    current = datetime.fromtimestamp(now, zone)
    target = current.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target <= current:
        target += timedelta(days=1)
    return target.timestamp() - now

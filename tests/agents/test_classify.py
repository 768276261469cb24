"""Error classification: every row of agent-protocols.md §5 with its real strings, and the
structured fields that take precedence over text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rdev.agents.classify import ROWS, Signals, classify
from rdev.codes import ErrorCode

# (text as the agents print it, expected class); grouped by the §5 row, in its priority order.
REAL_STRINGS: list[tuple[str, str]] = [
    ("You've hit your limit · resets 4pm (Asia/Kuala_Lumpur)", "usage_limit"),
    ("You\u2019ve hit your weekly limit · resets 3pm (UTC)", "usage_limit"),
    ("You've hit your Opus limit · resets 9am", "usage_limit"),
    ("Claude AI usage limit reached|1700003600", "usage_limit"),
    ("Quota exceeded. Check your plan and billing details.", "usage_limit"),
    ("insufficient_quota", "usage_limit"),
    ("FreeUsageLimitError", "usage_limit"),
    ("Free usage exceeded, add credits https://opencode.ai/zen", "usage_limit"),
    ("You've hit your usage limit. Upgrade to Pro or try again later.", "usage_limit"),
    ("RESOURCE_EXHAUSTED", "usage_limit"),
    ("API Error: Rate limit reached", "rate_limit"),
    ("Request rejected (429)", "rate_limit"),
    ("Server is temporarily limiting requests (not your usage limit)", "rate_limit"),
    (
        '429 {"type":"error","error":{"type":"rate_limit_error","message":"This request would '
        "exceed your account's rate limit. Please try again later.\"}}",
        "rate_limit",
    ),
    ("Rate Limited", "rate_limit"),
    ("Too Many Requests", "rate_limit"),
    ("exceeded retry limit, last status: 429 Too Many Requests", "rate_limit"),
    ("API Error: Repeated 529 Overloaded errors", "overloaded"),
    ("API Error: 529 Overloaded. This is a server-side issue, usually temporary", "overloaded"),
    ('{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}', "overloaded"),
    ("Provider is overloaded", "overloaded"),
    ("Selected model is at capacity. Please try a different model.", "overloaded"),
    (
        'API Error: 500 {"type":"error","error":{"type":"api_error","message":"Internal server '
        'error"}}',
        "server_error",
    ),
    ("We're currently experiencing high demand, which may cause temporary errors.", "server_error"),
    ("Invalid API key · Fix external API key", "auth"),
    ("Invalid API key · Please run /login", "auth"),
    ("Not logged in · Please run /login", "auth"),
    ("OAuth token has expired. Please obtain a new token or refresh your existing token.", "auth"),
    ("OAuth token revoked", "auth"),
    (
        '{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}',
        "auth",
    ),
    ("API Error: 401", "auth"),
    ("This organization has been disabled.", "auth"),
    ("OAuth token does not meet scope requirement user:profile", "auth"),
    ("ProviderAuthError", "auth"),
    ("unexpected status 401 Unauthorized: missing bearer", "auth"),
    ("Your access token could not be refreshed", "auth"),
    ("Credit balance is too low", "billing"),
    ("billing_error", "billing"),
    ("usage_not_included", "billing"),
    ("Prompt is too long", "context_length"),
    ("prompt is too long: 250000 tokens > 200000 maximum", "context_length"),
    ("Error during compaction: Conversation too long", "context_length"),
    ("Request too large", "context_length"),
    ("MessageContextOverflowError", "context_length"),
    ("the input exceeds the context window of this model", "context_length"),
    ("This model's maximum context length is 200000 tokens", "context_length"),
    ("context_length_exceeded", "context_length"),
    ("413 request entity too large", "context_length"),
    ("input token count 300000 exceeds the maximum", "context_length"),
    ("MessageOutputLengthError", "context_length"),
    ("Codex ran out of room in the model's context window. Start a new thread.", "context_length"),
    ("Input exceeds context window of this model", "context_length"),
    ("Request timed out", "timeout"),
    ("API Error: Stream idle timeout - no chunks received", "timeout"),
    ("Unable to connect to API (ECONNREFUSED)", "timeout"),
    ("getaddrinfo ENOTFOUND api.anthropic.com", "timeout"),
    ("read ECONNRESET", "timeout"),
    ("stream disconnected before completion: connection closed", "timeout"),
    ("Connection failed", "timeout"),
    ("context deadline exceeded", "timeout"),
    ("Reached maximum number of turns (3)", "max_turns"),
    ("error_max_turns", "max_turns"),
    ("error_max_budget_usd", "max_turns"),
    (
        "No conversation found with session ID: 0b0c5d1e-0000-4000-8000-000000000000",
        "session_not_found",
    ),
    ("no thread with id: 0199a213", "session_not_found"),
    ("Error: When using --print, --output-format=stream-json requires --verbose", "config"),
    (
        "--dangerously-skip-permissions cannot be used with root/sudo privileges for security "
        "reasons",
        "config",
    ),
    ("bash: claude: command not found", "config"),
    ("Error: spawn claude ENOENT", "config"),
    ("terminal_reason: aborted_streaming", "cancelled"),
    ("[Request interrupted by user]", "cancelled"),
    ("MessageAbortedError", "cancelled"),
]

CODES = {
    "usage_limit": ErrorCode.RATE_LIMITED,
    "rate_limit": ErrorCode.RATE_LIMITED,
    "overloaded": ErrorCode.OVERLOADED,
    "server_error": ErrorCode.AGENT_ERROR,
    "auth": ErrorCode.AUTH_FAILED,
    "billing": ErrorCode.AUTH_FAILED,
    "context_length": ErrorCode.CONTEXT_LENGTH,
    "timeout": ErrorCode.TIMEOUT,
    "max_turns": ErrorCode.INVALID_SPEC,
    "session_not_found": ErrorCode.INVALID_SPEC,
    "config": ErrorCode.AGENT_ERROR,
    "cancelled": ErrorCode.AGENT_ERROR,
}


@pytest.mark.parametrize(("text", "kind"), REAL_STRINGS)
def test_text_row(text: str, kind: str) -> None:
    """Each real agent message lands in its §5 class and that class's error code."""
    found = classify([text])
    assert (found.kind, found.code) == (kind, CODES[kind])


def test_every_row_is_exercised() -> None:
    """The table above covers every row of the classification table."""
    assert {row.kind for row in ROWS} == {kind for _, kind in REAL_STRINGS}


def test_usage_limit_wins_over_rate_limit() -> None:
    """A subscription limit that also says 429 is a usage limit (the earlier row)."""
    assert classify(["429", "You've hit your limit · resets 3pm"]).kind == "usage_limit"


def test_unknown_text_is_agent_error() -> None:
    """Nothing recognisable is AGENT_ERROR of kind unknown."""
    found = classify(["segmentation fault", None, ""])
    assert (found.kind, found.code) == ("unknown", ErrorCode.AGENT_ERROR)


@pytest.mark.parametrize(
    ("signals", "kind"),
    [
        (Signals(status=401), "auth"),
        (Signals(status=403), "auth"),
        (Signals(status=402), "billing"),
        (Signals(status=413), "context_length"),
        (Signals(status=429), "rate_limit"),
        (Signals(status=500), "server_error"),
        (Signals(status=529), "overloaded"),
        (Signals(no_response=True), "timeout"),
        (Signals(names=("authentication_failed",)), "auth"),
        (Signals(names=("billing_error",)), "billing"),
        (Signals(names=("rate_limit",)), "rate_limit"),
        (Signals(names=("server_error",)), "server_error"),
        (Signals(names=("max_output_tokens",)), "context_length"),
        (Signals(names=("error_max_turns",)), "max_turns"),
        (Signals(names=("aborted_tools",)), "cancelled"),
        (Signals(names=("ProviderAuthError",)), "auth"),
        (Signals(names=("MessageContextOverflowError",)), "context_length"),
        (Signals(names=("MessageAbortedError",)), "cancelled"),
        (Signals(names=("APIError",), status=529), "overloaded"),
        (Signals(rate_limit_rejected=True, resets_at=2e9), "usage_limit"),
    ],
)
def test_structured_signal(signals: Signals, kind: str) -> None:
    """Structured fields classify on their own."""
    assert classify([], signals).kind == kind


def test_structured_fields_beat_text() -> None:
    """An HTTP 401 is AUTH_FAILED even when the prose mentions a rate limit."""
    assert classify(["rate limit"], Signals(status=401)).code == ErrorCode.AUTH_FAILED


def test_names_without_meaning_fall_back_to_text() -> None:
    """Generic names (`unknown`, `APIError`) leave the decision to the text."""
    found = classify(["Overloaded"], Signals(names=("unknown", "APIError")))
    assert found.kind == "overloaded"


def test_retry_after_from_reset_time() -> None:
    """A rejected rate_limit_event's resetsAt becomes the retry-after."""
    found = classify([], Signals(rate_limit_rejected=True, resets_at=1_000_600), now=1_000_000)
    assert found.retry_after_s == 600


def test_retry_after_from_signal() -> None:
    """An explicit retry-after (api_retry's retry_delay_ms) is passed through."""
    assert classify([], Signals(status=429, retry_after_s=30)).retry_after_s == 30


def test_retry_after_from_epoch_in_text() -> None:
    """`Claude AI usage limit reached|<epoch>` yields the time until that epoch."""
    found = classify(["Claude AI usage limit reached|1700003600"], now=1_700_000_000)
    assert found.retry_after_s == 3600


def test_retry_after_from_clock_time() -> None:
    """`resets 3pm (UTC)` yields the time until the next 3 pm in that zone."""
    now = datetime(2026, 1, 1, 13, 30, tzinfo=UTC).timestamp()
    found = classify(["You've hit your limit · resets 3pm (UTC)"], now=now)
    assert found.retry_after_s == 5400


def test_retry_after_clock_time_tomorrow_and_zone() -> None:
    """A reset hour already past today is tomorrow, in the named time zone."""
    now = datetime(2026, 1, 1, 10, 0, tzinfo=UTC).timestamp()  # 18:00 in Kuala Lumpur
    found = classify(["You've hit your limit · resets 4pm (Asia/Kuala_Lumpur)"], now=now)
    assert found.retry_after_s == 22 * 3600


def test_unknown_zone_gives_no_retry_after() -> None:
    """An unknown time zone leaves retry-after unknown rather than guessing."""
    found = classify(["You've hit your limit · resets 4pm (Mars/Olympus)"], now=0)
    assert found.kind == "usage_limit"
    assert found.retry_after_s is None

"""The user-facing error codes and the retry policy of each.

A failed task carries exactly one of these codes. The six of design.md keep their meaning forever;
OVERLOADED and CONTEXT_LENGTH were added for real agent failures that need a different policy
(a provider's 529 wants a long backoff, an over-long prompt can never succeed by retrying).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    """Why a task (or one attempt of it) failed."""

    RATE_LIMITED = "RATE_LIMITED"
    AUTH_FAILED = "AUTH_FAILED"
    TIMEOUT = "TIMEOUT"
    STALE_WORKER = "STALE_WORKER"
    AGENT_ERROR = "AGENT_ERROR"
    INVALID_SPEC = "INVALID_SPEC"
    OVERLOADED = "OVERLOADED"
    CONTEXT_LENGTH = "CONTEXT_LENGTH"


@dataclass(frozen=True)
class RetryPolicy:
    """Whether a code is retried, and the first backoff step when no retry-after is known.

    `base_backoff` names a Settings field so operators can tune the step without code changes.
    """

    retryable: bool
    base_backoff: str = "retry_backoff_s"


RETRY_POLICIES: dict[ErrorCode, RetryPolicy] = {
    ErrorCode.RATE_LIMITED: RetryPolicy(retryable=True, base_backoff="rate_limit_backoff_s"),
    ErrorCode.OVERLOADED: RetryPolicy(retryable=True, base_backoff="rate_limit_backoff_s"),
    ErrorCode.TIMEOUT: RetryPolicy(retryable=True),
    ErrorCode.AGENT_ERROR: RetryPolicy(retryable=True),
    ErrorCode.AUTH_FAILED: RetryPolicy(retryable=False),
    ErrorCode.INVALID_SPEC: RetryPolicy(retryable=False),
    ErrorCode.CONTEXT_LENGTH: RetryPolicy(retryable=False),
    ErrorCode.STALE_WORKER: RetryPolicy(retryable=False),
}


def is_retryable(code: ErrorCode) -> bool:
    """True when a failure with this code may be tried again (retries permitting)."""
    return RETRY_POLICIES[code].retryable

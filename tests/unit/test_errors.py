"""Errors cross the Celery boundary intact, and each code has a decided retry policy."""

from __future__ import annotations

import pickle

import pytest

from rdev import codes, errors
from rdev.codes import ErrorCode

INSTANCES = [
    errors.ConfigError("RDEV_X", "bad"),
    errors.InvalidRequest("nope", "field"),
    errors.InvalidSpec("spec.prompt: required", "spec.prompt"),
    errors.TaskNotFound("t1"),
    errors.WorkerNotFound("w1"),
    errors.InvalidTransition("t1", "completed", "cancel"),
    errors.IdempotencyConflict("k", "t1"),
    errors.StaleAttempt("t1", 3),
    errors.TaskFailure(ErrorCode.RATE_LIMITED, "429", 30.0, {"provider": "claude"}),
    errors.ServiceUnavailable("database", "down"),
]


@pytest.mark.parametrize("error", INSTANCES, ids=lambda e: type(e).__name__)
def test_every_error_survives_pickling(error: errors.RdevError) -> None:
    """pickle round-trips every RdevError with its attributes and message."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__ == error.__dict__


def test_every_code_has_a_retry_policy() -> None:
    """No error code is left without a decision on retrying."""
    assert set(codes.RETRY_POLICIES) == set(ErrorCode)


@pytest.mark.parametrize(("code", "retried"), [
    (ErrorCode.RATE_LIMITED, True), (ErrorCode.TIMEOUT, True), (ErrorCode.AGENT_ERROR, True),
    (ErrorCode.OVERLOADED, True), (ErrorCode.AUTH_FAILED, False), (ErrorCode.INVALID_SPEC, False),
    (ErrorCode.STALE_WORKER, False), (ErrorCode.CONTEXT_LENGTH, False),
])
def test_retry_policy_matches_the_design(code: ErrorCode, retried: bool) -> None:
    """The design's table: which codes are retried."""
    assert codes.is_retryable(code) is retried

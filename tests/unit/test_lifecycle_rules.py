"""Pure parts of the life cycle: the transition table and the backoff rule."""

from __future__ import annotations

from rdev import errors, lifecycle
from rdev.codes import ErrorCode
from rdev.config import Settings
from rdev.db.models import TERMINAL, Status


def test_terminal_statuses_allow_no_transition() -> None:
    """Completed, failed and cancelled tasks can change no more."""
    assert all(lifecycle.ALLOWED[status] == frozenset() for status in TERMINAL)


def test_running_may_go_back_to_pending_but_pending_never_finishes() -> None:
    """Retries and rescue move running to pending; pending can only start or be cancelled."""
    assert Status.PENDING in lifecycle.ALLOWED[Status.RUNNING]
    assert lifecycle.ALLOWED[Status.PENDING] == {Status.RUNNING, Status.CANCELLED}


def test_backoff_is_exponential_and_capped() -> None:
    """AGENT_ERROR waits base * 2^retries, never more than the maximum."""
    settings = Settings(retry_backoff_s=10, max_backoff_s=60)
    failure = errors.TaskFailure(ErrorCode.AGENT_ERROR, "x")
    assert [lifecycle.backoff_s(failure, n, settings) for n in range(4)] == [10, 20, 40, 60]


def test_rate_limits_back_off_from_their_own_base() -> None:
    """RATE_LIMITED without retry-after starts at the rate-limit backoff (60 s by default)."""
    failure = errors.TaskFailure(ErrorCode.RATE_LIMITED, "429")
    assert lifecycle.backoff_s(failure, 0, Settings()) == 60


def test_retry_after_wins() -> None:
    """A provider's retry-after is honoured as given, even above the exponential cap."""
    failure = errors.TaskFailure(ErrorCode.RATE_LIMITED, "429", retry_after_s=7200)
    assert lifecycle.backoff_s(failure, 0, Settings(max_backoff_s=60)) == 7200

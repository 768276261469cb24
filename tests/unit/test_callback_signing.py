"""Callback signatures and the retry schedule of deliveries."""

from __future__ import annotations

import hashlib
import hmac

from rdev import callbacks
from rdev.config import Settings


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    """A receiver recomputes the signature from the secret, timestamp and raw body."""
    body = b'{"status":"completed"}'
    expected = hmac.new(b"k3y", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert callbacks.signature("k3y", "1700000000", body) == f"sha256={expected}"


def test_retry_delays_grow_and_stop_at_the_attempt_budget() -> None:
    """Backoff doubles per failed attempt, is capped, and ends after the last attempt."""
    settings = Settings(callback_backoff_s=10, callback_max_attempts=4, max_backoff_s=25)
    delays = [callbacks.retry_delay_s(settings, n) for n in (1, 2, 3, 4)]
    assert delays == [10.0, 20.0, 25.0, None]

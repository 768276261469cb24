"""Fixtures for every tier: a clean RDEV_* environment for each test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _scrub_rdev_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No RDEV_* variable of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("RDEV_"):
            monkeypatch.delenv(name)
    return

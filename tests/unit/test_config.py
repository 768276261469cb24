"""Settings are read from RDEV_* variables only, typed, and fail naming the variable."""

from __future__ import annotations

import pytest

from rdev.config import Settings
from rdev.errors import ConfigError


def test_defaults_run_on_one_machine() -> None:
    """With no variables set, rdev talks to local PostgreSQL and Redis."""
    settings = Settings.from_env({})
    assert settings.database_url.startswith("postgresql+psycopg2://")
    assert settings.broker_url == "redis://127.0.0.1:6379/0"
    assert (settings.heartbeat_s, settings.stale_after_s, settings.task_timeout_s) == (15, 90, 900)


def test_variables_are_typed() -> None:
    """RDEV_HEARTBEAT_S=2.5 becomes a float field."""
    settings = Settings.from_env({"RDEV_HEARTBEAT_S": "2.5", "RDEV_RETENTION_DAYS": "1"})
    assert settings.heartbeat_s == 2.5
    assert settings.retention_days == 1


@pytest.mark.parametrize(("variable", "value"), [
    ("RDEV_HEARTBEAT_S", "often"),
    ("RDEV_HEARTBEAT_S", "-1"),
    ("RDEV_API_PORT", "70000"),
    ("RDEV_MAX_RETRIES", "1.5"),
])
def test_bad_value_names_the_variable(variable: str, value: str) -> None:
    """A malformed value raises ConfigError naming the variable."""
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({variable: value})
    assert raised.value.variable == variable


def test_task_timeout_must_fit_the_maximum() -> None:
    """A default task timeout above the maximum is refused."""
    with pytest.raises(ConfigError):
        Settings.from_env({"RDEV_TASK_TIMEOUT_S": "100", "RDEV_MAX_TASK_TIMEOUT_S": "50"})


def test_visibility_timeout_exceeds_the_longest_task() -> None:
    """The broker's visibility timeout defaults above the longest task and may not be below it."""
    settings = Settings.from_env({"RDEV_MAX_TASK_TIMEOUT_S": "600", "RDEV_TASK_TIMEOUT_S": "60"})
    assert settings.broker_visibility_timeout_s > 600
    with pytest.raises(ConfigError):
        Settings.from_env({"RDEV_MAX_TASK_TIMEOUT_S": "600", "RDEV_TASK_TIMEOUT_S": "60",
                           "RDEV_VISIBILITY_TIMEOUT_S": "300"})


def test_unknown_variables_are_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """A variable rdev does not know is reported, not fatal."""
    settings = Settings.from_env({"RDEV_NO_SUCH_THING": "1"})
    assert settings == Settings()
    assert "RDEV_NO_SUCH_THING" in caplog.text


def test_environ_round_trips() -> None:
    """Settings passed to child processes as variables read back the same."""
    settings = Settings.from_env({"RDEV_QUEUE": "q", "RDEV_HEARTBEAT_S": "3"})
    assert Settings.from_env(settings.environ()) == settings

"""Plain functions of the fleet: limit parsing, worker status, providers, metrics rendering."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rdev import admission, metrics
from rdev.agents import registry
from rdev.config import Settings, parse_limits
from rdev.db.models_fleet import Worker
from rdev.errors import ConfigError
from rdev.workers import worker_json


def test_limits_parse_type_equals_number() -> None:
    """`type=N` pairs become a mapping; blanks are ignored."""
    assert parse_limits(" build=1, deploy=2 ,") == {"build": 1, "deploy": 2}
    assert parse_limits("") == {}


@pytest.mark.parametrize("bad", ["build", "build=x", "=1", "build=-1"])
def test_malformed_limits_are_a_config_error(bad: str) -> None:
    """A malformed RDEV_PROJECT_CONCURRENCY names the variable."""
    with pytest.raises(ConfigError, match="RDEV_PROJECT_CONCURRENCY"):
        Settings.from_env({"RDEV_PROJECT_CONCURRENCY": bad})


def _worker(status: str) -> Worker:
    now = datetime.now(UTC)
    return Worker(id="w@h", hostname="h", pid=1, queues=["rdev"], concurrency=2, providers=[],
                  version="0", status=status, started_at=now, last_seen=now)


@pytest.mark.parametrize(("stored", "running", "shown"), [
    ("idle", 0, "idle"), ("idle", 2, "busy"), ("busy", 0, "idle"),
    ("draining", 1, "draining"), ("offline", 0, "offline"),
])
def test_worker_status_follows_its_running_tasks(stored: str, running: int, shown: str) -> None:
    """Idle or busy is read from running tasks; draining and offline are kept."""
    assert worker_json(_worker(stored), running)["status"] == shown


def test_only_agent_types_have_a_provider() -> None:
    """build names its agent (or the default); deploy runs none."""
    settings = Settings(agent="opencode")
    assert admission.provider_of("build", {"agent": "claude"}, settings) == "claude"
    assert admission.provider_of("build", {}, settings) == "opencode"
    assert admission.provider_of("build", {}, Settings()) == registry.default_name(Settings())
    assert admission.provider_of("deploy", {}, settings) is None
    assert admission.provider_of("no-such-type", {}, settings) is None


def test_metrics_render_every_family_from_a_snapshot() -> None:
    """A snapshot renders as Prometheus text with cumulative histogram buckets."""
    shot = metrics.Snapshot(
        tasks=[("running", "build", 2)], pending={"build": 3}, oldest_pending_age_s=12.5,
        workers={"idle": 1}, failures=[("TIMEOUT", 4)],
        durations=[("build", [0, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2], 70.0, 2)], rescues=5,
        pauses={"claude": 30.0},
    )
    registry = metrics.CollectorRegistry(auto_describe=False)

    class Fixed(metrics.DatabaseCollector):
        def collect(self):  # type: ignore[no-untyped-def]
            yield from metrics._task_families(shot)
            yield from metrics._fleet_families(shot)

    registry.register(Fixed(None))  # type: ignore[arg-type]
    text = metrics.generate_latest(registry).decode()
    assert 'rdev_tasks{status="running",type="build"} 2.0' in text
    assert 'rdev_task_duration_seconds_bucket{le="+Inf",type="build"} 2.0' in text
    assert 'rdev_task_failures_total{code="TIMEOUT"} 4.0' in text
    assert "rdev_rescues_total 5.0" in text
    assert 'rdev_provider_pause_seconds{provider="claude"} 30.0' in text

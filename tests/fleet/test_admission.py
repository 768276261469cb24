"""Admission at claim: project and lane slots under concurrent claims, pauses, side effects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, update

from rdev import admission, errors, lanes, lifecycle
from rdev.codes import ErrorCode
from rdev.config import Settings
from rdev.db import fleet_queries
from rdev.db.models import Task
from rdev.runtime import Runtime
from rdev.tasks.celery_app import make_celery
from tests.fleet.helpers import add_task, at_once, claim, get

pytestmark = pytest.mark.integration


@pytest.fixture
def limited(settings: Settings) -> Runtime:
    """A runtime whose probe lane allows one running task per project."""
    runtime: Runtime = make_celery(settings.with_overrides(project_concurrency="probe=1")).rdev
    return runtime


@pytest.mark.parametrize("round_", range(3))
def test_two_workers_cannot_take_the_last_project_slot(limited: Runtime, round_: int) -> None:
    """Ten simultaneous claims in one project with one slot: exactly one wins."""
    tasks = [add_task(limited, project=f"proj{round_}") for _ in range(10)]
    results = at_once([lambda t=t, i=i: claim(limited, t.id, f"w{i}") for i, t in
                       enumerate(tasks)])
    assert sum(result is not None for result in results) == 1
    with limited.db.session() as session:
        assert fleet_queries.count_running(session, "probe", f"proj{round_}") == 1


def test_other_projects_are_not_held_back(limited: Runtime) -> None:
    """The per-project limit leaves other projects free to run."""
    tasks = [add_task(limited, project=f"p{i}") for i in range(6)]
    results = at_once([lambda t=t: claim(limited, t.id) for t in tasks])
    assert all(result is not None for result in results)


def test_lane_limit_holds_across_projects(runtime: Runtime) -> None:
    """A lane's fleet-wide maximum, set at run time, caps simultaneous claims of all projects."""
    with runtime.db.session() as session:
        lanes.update(session, "probe", {"max_concurrency": 3})
    tasks = [add_task(runtime, project=f"p{i}") for i in range(12)]
    results = at_once([lambda t=t: claim(runtime, t.id) for t in tasks])
    assert sum(result is not None for result in results) == 3
    with runtime.db.session() as session:
        lanes.update(session, "probe", {"max_concurrency": None})
    waiting = [t for t, r in zip(tasks, results, strict=True) if r is None]
    assert claim(runtime, waiting[0].id) is not None


def test_waiting_task_is_parked_and_woken_when_the_slot_frees(limited: Runtime) -> None:
    """A task refused for a full slot stays pending; wake() publishes it once the slot frees."""
    first, second = add_task(limited), add_task(limited)
    running = claim(limited, first.id)
    assert running is not None
    assert claim(limited, second.id) is None
    assert get(limited, second.id).status == "pending"
    with limited.db.session() as session:
        lifecycle.complete(session, first.id, running.attempt, {})
    assert admission.wake(limited, "probe", "p") == 1
    assert claim(limited, second.id) is not None


def test_default_limits_hold_build_sdlc_and_deploy_to_one_per_project() -> None:
    """Out of the box, build, sdlc and deploy run one at a time per project; test is free."""
    assert Settings().project_limits == {"build": 1, "sdlc": 1, "deploy": 1}


def test_rate_limit_with_reset_time_pauses_the_provider(runtime: Runtime) -> None:
    """RATE_LIMITED with a known reset parks the provider's pending tasks, not others'."""
    failing = add_task(runtime, agent="claude")
    waiting = add_task(runtime, agent="claude")
    other = add_task(runtime, agent="opencode")
    running = claim(runtime, failing.id)
    assert running is not None
    failure = errors.TaskFailure(ErrorCode.RATE_LIMITED, "429 rate limit", 120)
    with runtime.db.session() as session:
        lifecycle.fail(session, failing.id, running.attempt, failure, runtime.settings)
        pauses = fleet_queries.active_pauses(session)
    assert [p.provider for p in pauses] == ["claude"]
    assert claim(runtime, waiting.id) is None
    parked = get(runtime, waiting.id)
    assert parked.status == "pending"
    assert parked.retry_count == 0
    assert parked.not_before is not None
    assert parked.not_before > datetime.now(UTC) + timedelta(seconds=100)
    assert claim(runtime, other.id) is not None


def test_lost_attempt_of_a_side_effect_type_fails_at_once(runtime: Runtime) -> None:
    """Rescue fails a lost attempt with side effects with STALE_WORKER despite retries left."""
    deploy_like = add_task(runtime, type_="probe_side_effects")
    plain = add_task(runtime)
    for task in (deploy_like, plain):
        assert claim(runtime, task.id) is not None
    with runtime.db.session() as session:
        session.execute(update(Task).values(heartbeat_at=func.now() - timedelta(minutes=5)))
        rescued = {t.id: t for t in lifecycle.rescue_stale(session, runtime.settings)}
    assert rescued[deploy_like.id].status == "failed"
    assert rescued[deploy_like.id].error_code == "STALE_WORKER"
    assert rescued[plain.id].status == "pending"

"""Lanes and run-time settings: the limits operators change through the API without a restart.

Each task type is a lane (seed 002). A lane may cap how many of its tasks run across the fleet
(`max_concurrency`) and how many run at once in one project (`project_concurrency`). The
configured defaults (RDEV_LANE_CONCURRENCY, RDEV_PROJECT_CONCURRENCY) apply until an operator
sets a value; setting None returns to the default. Retention works the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from rdev import errors, handlers
from rdev.config import Settings
from rdev.db import fleet_queries

RETENTION_DAYS = "retention_days"
LIMITS_TTL_S = 1.0
_limits_cache: dict[tuple[str, str, str, str], tuple[float, Limits]] = {}
LIMIT_FIELDS = ("max_concurrency", "project_concurrency")


@dataclass(frozen=True)
class Limits:
    """How many tasks of one type may run: fleet-wide and per project (None: unlimited)."""

    lane: int | None
    project: int | None

    @property
    def any(self) -> bool:
        """True when some limit applies."""
        return self.lane is not None or self.project is not None


def limits(session: Session, type_: str, settings: Settings) -> Limits:
    """The limits in force for a type, as read at most LIMITS_TTL_S ago in this process.

    Every claim and every finished attempt asks; the short cache spares both a query, and an
    operator's change reaches every worker within a second.
    """
    key = (settings.database_url, type_, settings.lane_concurrency, settings.project_concurrency)
    cached = _limits_cache.get(key)
    if cached is not None and time.monotonic() - cached[0] < LIMITS_TTL_S:
        return cached[1]
    found = _read_limits(session, type_, settings)
    _limits_cache[key] = (time.monotonic(), found)
    return found


def _read_limits(session: Session, type_: str, settings: Settings) -> Limits:
    lane = fleet_queries.get_lane(session, type_)
    fleet = lane.max_concurrency if lane and lane.max_concurrency is not None else None
    project = lane.project_concurrency if lane and lane.project_concurrency is not None else None
    return Limits(
        lane=fleet if fleet is not None else settings.lane_limits.get(type_),
        project=project if project is not None else settings.project_limits.get(type_),
    )


def describe(session: Session, settings: Settings) -> list[dict[str, Any]]:
    """Every lane with its limits in force and the operator's overrides."""
    overrides = {lane.type: lane for lane in fleet_queries.list_lanes(session)}
    lanes = []
    for name in sorted({*handlers.names(), *overrides}):
        lane = overrides.get(name)
        in_force = limits(session, name, settings)
        lanes.append({
            "type": name,
            "max_concurrency": in_force.lane,
            "project_concurrency": in_force.project,
            "running": fleet_queries.count_running(session, name),
            "side_effects": _side_effects(name),
            "overrides": {field: getattr(lane, field) if lane else None for field in LIMIT_FIELDS},
        })
    return lanes


def update(session: Session, type_: str, changes: dict[str, Any]) -> None:
    """Set a lane's limits; only the fields given change, None restores the default."""
    handlers.get(type_)
    unknown = sorted(set(changes) - set(LIMIT_FIELDS))
    if unknown:
        raise errors.InvalidRequest(f"unknown field {unknown[0]!r}", unknown[0])
    if not changes:
        raise errors.InvalidRequest(f"give at least one of {', '.join(LIMIT_FIELDS)}")
    for field, value in changes.items():
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < 0):
            raise errors.InvalidRequest(f"{field} must be a non-negative integer or null", field)
    fleet_queries.upsert_lane(session, type_, changes)
    _limits_cache.clear()


def retention_days(session: Session, settings: Settings) -> float:
    """How many days finished tasks are kept: the operator's value, else RDEV_RETENTION_DAYS."""
    value = fleet_queries.get_setting(session, RETENTION_DAYS)
    return float(value) if value is not None else settings.retention_days


def set_retention_days(session: Session, days: Any) -> None:
    """Change the retention period at run time (None: back to RDEV_RETENTION_DAYS)."""
    valid = days is None or (
        isinstance(days, int | float) and not isinstance(days, bool) and days > 0
    )
    if not valid:
        raise errors.InvalidRequest("retention_days must be a positive number or null",
                                    RETENTION_DAYS)
    fleet_queries.put_setting(session, RETENTION_DAYS, days)


def _side_effects(type_: str) -> bool:
    try:
        return handlers.get(type_).side_effects
    except errors.InvalidSpec:
        return False

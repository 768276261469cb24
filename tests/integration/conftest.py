"""Integration tier: the machine's PostgreSQL and Redis, in-process rdev code."""

from tests.support.fixtures import *  # noqa: F403

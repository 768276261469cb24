"""Fleet tier: workers, slots, pauses and metrics against the real PostgreSQL and Redis."""

from tests.support.fixtures import *  # noqa: F403

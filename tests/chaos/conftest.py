"""Chaos tier: real workers, beat, API, Redis and PostgreSQL processes, killed on purpose."""

from tests.support.fixtures import *  # noqa: F403

"""End-to-end tier: real worker, beat and API processes against PostgreSQL and Redis."""

from tests.support.fixtures import *  # noqa: F403

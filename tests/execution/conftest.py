"""Execution tier: real git, a real worker subprocess, the real agent CLIs against a mock API."""

from tests.execution.harness import *  # noqa: F403
from tests.support.fixtures import *  # noqa: F403

"""Registers the built-in handlers with the task-type registry (imported by API and workers)."""

from __future__ import annotations

from rdev import handlers
from rdev.execution import build, checks

handlers.register("build", handler=build.build)
handlers.register("sdlc", handler=build.sdlc)
handlers.register("test", handler=checks.run_tests)
handlers.register("deploy", handler=checks.deploy, side_effects=True)

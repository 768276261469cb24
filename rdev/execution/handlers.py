"""Registers the built-in handlers with the task-type registry (imported by API and workers).

The build spec is checked here once more at enqueue: its `agent` must be a registered provider,
which only the execution side knows.
"""

from __future__ import annotations

from pydantic import field_validator

from rdev import handlers, specs
from rdev.agents import registry
from rdev.execution import build, checks


class BuildSpec(specs.BuildSpec):
    """The build spec, with the agent provider checked against the registry."""

    @field_validator("agent")
    @classmethod
    def _known_agent(cls, value: str | None) -> str | None:
        if value is not None and value not in registry.names():
            raise ValueError(f"unknown agent provider (known: {', '.join(registry.names())})")
        return value


handlers.register("build", spec_model=BuildSpec, handler=build.build)
handlers.register("sdlc", handler=build.sdlc)
handlers.register("test", handler=checks.run_tests)
handlers.register("deploy", handler=checks.deploy, side_effects=True)

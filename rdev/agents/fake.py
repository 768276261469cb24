"""The fake provider: the Claude Code adapter driving the bundled `bin/fake-claude` executable.

It goes through the same process handling as the real CLI, so tests and local development exercise
the real adapter code without an API. The scenario (agent-protocols.md §6) comes from the request's
`provider_options["scenario"]`, else a `[scenario:NAME]` tag in the prompt, else `success`.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rdev.agents import claude_code, process
from rdev.agents.base import AgentRequest

FAKE_CLAUDE = Path(__file__).with_name("bin") / "fake-claude"


class FakeAgentAdapter(claude_code.ClaudeCodeAdapter):
    """Claude Code's adapter with `fake-claude` as the binary."""

    name: ClassVar[str] = "fake"
    options: ClassVar[frozenset[str] | None] = claude_code.OPTIONS | {"scenario"}

    @property
    def binary(self) -> str:
        """The bundled fake CLI."""
        return str(FAKE_CLAUDE)

    def env(self, request: AgentRequest) -> dict[str, str]:
        """The usual environment, plus the scenario when the request names one."""
        scenario = request.provider_options.get("scenario")
        extra = {"FAKE_CLAUDE_SCENARIO": str(scenario)} if scenario else {}
        return process.agent_env({**request.env, **extra})

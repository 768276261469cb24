"""The Claude Code adapter: builds the `claude` command line and runs it through `process.py`.

The prompt goes in on stdin as one stream-json user message (`-p --input-format stream-json`) rather
than in argv: it stays out of `ps` and ARG_MAX, the CLI does not wait three seconds for stdin, and
closing stdin is then the CLI's own graceful end, the first step of the stop ladder. Output is
`--output-format stream-json --verbose` (the CLI refuses stream-json output without `--verbose`).
"""

from __future__ import annotations

import json
from typing import ClassVar

from rdev.agents import process
from rdev.agents.base import (
    AgentAdapter,
    AgentRequest,
    AgentResult,
    Availability,
    Capabilities,
    EventCallback,
)
from rdev.agents.claude_stream import ClaudeStream
from rdev.config import Settings

OPTIONS = frozenset({"permission_mode", "max_budget_usd", "fallback_model"})


class ClaudeCodeAdapter(AgentAdapter):
    """Runs one request with the `claude` CLI (`Settings.claude_bin`)."""

    name: ClassVar[str] = "claude"
    options: ClassVar[frozenset[str] | None] = OPTIONS

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._process: process.AgentProcess | None = None

    @property
    def pid(self) -> int | None:
        """The agent's process (and process group) id once it started."""
        return self._process.pid if self._process else None

    @property
    def binary(self) -> str:
        """The CLI to run."""
        return str(self.settings.claude_bin)

    def capabilities(self) -> Capabilities:
        """Claude Code streams events, resumes sessions and can be cancelled."""
        return Capabilities(streaming=True, resume=True, cancel=True)

    def check_available(self, timeout_s: float = 5.0) -> Availability:
        """Available when `claude --version` exits 0 within `timeout_s`."""
        done = process.run_command([self.binary, "--version"], timeout_s=timeout_s)
        if done.exit_code == 0:
            return Availability(True, done.output.strip())
        reason = "timed out" if done.timed_out else f"exit {done.exit_code}"
        return Availability(
            False, f"{self.binary} --version: {reason}: {done.output.strip()[:200]}"
        )

    def argv(self, request: AgentRequest) -> list[str]:
        """The command line for `request`."""
        options = request.provider_options
        mode = options.get("permission_mode") or self.settings.agent_permission_mode
        argv = [
            self.binary,
            "-p",
            "--input-format",
            "stream-json",
            "--output-format",
            "stream-json",
            "--verbose",
            "--permission-mode",
            str(mode),
        ]
        if request.model:
            argv += ["--model", request.model]
        if request.max_turns is not None:
            argv += ["--max-turns", str(request.max_turns)]
        if request.allowed_tools:
            argv += ["--allowedTools", ",".join(request.allowed_tools)]
        if options.get("max_budget_usd") is not None:
            argv += ["--max-budget-usd", str(options["max_budget_usd"])]
        if options.get("fallback_model"):
            argv += ["--fallback-model", str(options["fallback_model"])]
        if request.session_id:
            argv.append(f"--resume={request.session_id}")  # `=` so an id can never read as a flag
        return argv

    def env(self, request: AgentRequest) -> dict[str, str]:
        """The worker's environment plus the request's (see `process.agent_env`)."""
        return process.agent_env(request.env)

    def _execute(self, request: AgentRequest, on_event: EventCallback) -> AgentResult:
        spec = self._spec(request)
        stream = ClaudeStream(
            on_event, retry_budget=self.settings.agent_api_retry_budget, binary=self.binary
        )
        self._process = agent = process.AgentProcess(spec)
        self.on_cancel(agent.stop)
        outcome = agent.run(stream.handle)
        return stream.result(
            outcome, cancelled=self.cancelled, idle_s=spec.idle_timeout_s, timeout_s=spec.timeout_s
        )

    def _spec(self, request: AgentRequest) -> process.ProcessSpec:
        message = {
            "type": "user",
            "session_id": "",
            "parent_tool_use_id": None,
            "message": {"role": "user", "content": request.prompt},
        }
        return process.ProcessSpec(
            argv=self.argv(request),
            cwd=request.cwd,
            env=self.env(request),
            idle_timeout_s=self.idle_timeout(request),
            timeout_s=request.timeout_s,
            stdin_data=(json.dumps(message) + "\n").encode(),
            stdin_grace_s=self.settings.agent_stop_grace_s,
            term_grace_s=self.settings.agent_stop_grace_s,
            result_grace_s=self.settings.agent_result_grace_s,
        )

"""The Claude Code adapter against the bundled fake CLI: argv, §6 scenarios, process hygiene."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from rdev.agents.base import AgentRequest, AgentResult
from rdev.agents.claude_code import ClaudeCodeAdapter
from rdev.agents.fake import FAKE_CLAUDE, FakeAgentAdapter
from rdev.codes import ErrorCode
from rdev.config import Settings
from tests.agents.conftest import Events, live_group_members

SESSION = "98428278-d240-475c-ad41-b840a6a42ffb"


def run(
    settings: Settings,
    workdir: Path,
    scenario: str,
    events: Events | None = None,
    budget: int = 0,
    **fields: Any,
) -> tuple[AgentResult, FakeAgentAdapter]:
    """Run one fake-claude scenario through the Claude Code adapter."""
    adapter = FakeAgentAdapter(settings.with_overrides(agent_api_retry_budget=budget))
    request = AgentRequest(
        prompt="do it", cwd=workdir, provider_options={"scenario": scenario}, **fields
    )
    return adapter.run(request, events if events is not None else Events()), adapter


def test_argv(settings: Settings, workdir: Path) -> None:
    """The command line carries every request field; the resume id uses the `=` form."""
    adapter = ClaudeCodeAdapter(settings.with_overrides(claude_bin="/opt/claude"))
    request = AgentRequest(
        prompt="secret prompt",
        cwd=workdir,
        model="opus",
        max_turns=4,
        session_id=SESSION,
        allowed_tools=("Bash(git *)", "Read"),
        provider_options={"permission_mode": "plan", "max_budget_usd": 2},
    )
    argv = adapter.argv(request)
    assert argv[:8] == [
        "/opt/claude",
        "-p",
        "--input-format",
        "stream-json",
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-mode",
    ]
    assert argv[8] == "plan"
    assert argv[9:11] == ["--model", "opus"]
    assert argv[11:13] == ["--max-turns", "4"]
    assert argv[13:15] == ["--allowedTools", "Bash(git *),Read"]
    assert argv[15:17] == ["--max-budget-usd", "2"]
    assert argv[-1] == f"--resume={SESSION}"
    assert "secret prompt" not in " ".join(argv)  # the prompt goes on stdin


def test_fake_enforces_verbose(workdir: Path) -> None:
    """Like the real CLI, the fake refuses stream-json output without --verbose."""
    done = subprocess.run(
        [str(FAKE_CLAUDE), "-p", "hi", "--output-format", "stream-json"],
        capture_output=True,
        text=True,
        cwd=workdir,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip() == (
        "Error: When using --print, --output-format=stream-json requires --verbose"
    )


def test_success_writes_file_and_reports_usage(settings: Settings, workdir: Path) -> None:
    """A success run's tool call really writes its file; cost, turns and tokens come back."""
    events = Events()
    result, _ = run(settings, workdir, "success", events)
    assert result.success
    assert result.text == "Done: do it"
    assert result.turns == 2
    assert result.cost_usd == 0.0123
    assert result.input_tokens == 40
    assert result.output_tokens == 14
    assert (workdir / "fake-claude.txt").read_text() == "do it\n"
    assert events.kinds() == ["init", "tool_use", "tool_result", "text", "rate_limit", "result"]
    assert all(event.raw.startswith("{") for event in events)


def test_request_env_reaches_the_agent(settings: Settings, workdir: Path) -> None:
    """The request's environment is passed to the agent process."""
    result, _ = run(settings, workdir, "success", env={"FAKE_CLAUDE_FILE": "chosen.txt"})
    assert result.success
    assert (workdir / "chosen.txt").exists()


@pytest.mark.parametrize("scenario", ["auth", "auth_exit1"])
def test_auth_result(settings: Settings, workdir: Path, scenario: str) -> None:
    """An auth failure result is AUTH_FAILED whatever the exit code."""
    result, _ = run(settings, workdir, scenario)
    assert result.error_code == ErrorCode.AUTH_FAILED
    assert result.error_message == "Invalid API key · Fix external API key"


def test_auth_retry_stops_at_first_401(settings: Settings, workdir: Path) -> None:
    """The first api_retry with 401 ends the run; the CLI's ten retries are not waited for."""
    events = Events()
    result, _ = run(settings, workdir, "auth_retry", events, budget=5)
    assert result.error_code == ErrorCode.AUTH_FAILED
    assert events.kinds() == ["init", "retry"]


def test_rate_limit_stops_when_budget_spent(settings: Settings, workdir: Path) -> None:
    """With no retry budget the first 429 retry ends the run with its retry delay."""
    events = Events()
    result, _ = run(settings, workdir, "rate_limit", events, budget=0)
    assert result.error_code == ErrorCode.RATE_LIMITED
    assert result.retry_after_s == 30
    assert events.kinds().count("retry") == 1


def test_retry_budget_lets_the_cli_retry(settings: Settings, workdir: Path) -> None:
    """Within the budget the CLI's own retries continue, up to its final rate-limit result."""
    events = Events()
    result, _ = run(settings, workdir, "rate_limit", events, budget=5)
    assert events.kinds().count("retry") == 3
    assert "rate_limit" in events.kinds()
    assert result.error_code == ErrorCode.RATE_LIMITED
    assert result.retry_after_s is not None
    assert 3500 < result.retry_after_s <= 3600


def test_usage_limit(settings: Settings, workdir: Path) -> None:
    """A subscription limit is RATE_LIMITED until the reset time of the rejected event."""
    result, _ = run(settings, workdir, "usage_limit", budget=5)
    assert result.error_code == ErrorCode.RATE_LIMITED
    assert result.error_kind == "usage_limit"
    assert result.retry_after_s is not None
    assert result.retry_after_s > 3500


@pytest.mark.parametrize("scenario", ["overloaded", "overloaded_exit1"])
def test_overloaded(settings: Settings, workdir: Path, scenario: str) -> None:
    """Repeated 529s are OVERLOADED with either exit code."""
    result, _ = run(settings, workdir, scenario, budget=5)
    assert result.error_code == ErrorCode.OVERLOADED


def test_max_turns_is_honoured(settings: Settings, workdir: Path) -> None:
    """--max-turns reaches the CLI; hitting it is INVALID_SPEC (the spec's limit)."""
    result, _ = run(settings, workdir, "max_turns", max_turns=2)
    assert result.error_code == ErrorCode.INVALID_SPEC
    assert result.error_kind == "max_turns"
    assert result.turns == 2
    assert result.error_message == "Reached maximum number of turns (2)"
    assert sorted(p.name for p in workdir.iterdir()) == ["turn-1.txt", "turn-2.txt"]


def test_resume_echoes_session(settings: Settings, workdir: Path) -> None:
    """A resumed run reports the session id it was given."""
    result, _ = run(settings, workdir, "success", session_id=SESSION)
    assert result.success
    assert result.session_id == SESSION


def test_resume_miss(settings: Settings, workdir: Path) -> None:
    """An unknown session id is INVALID_SPEC of kind session_not_found."""
    result, _ = run(settings, workdir, "resume_miss", session_id=SESSION)
    assert result.error_code == ErrorCode.INVALID_SPEC
    assert result.error_kind == "session_not_found"
    assert result.session_id == SESSION


def test_crash_without_result(settings: Settings, workdir: Path) -> None:
    """A process that dies without a result is AGENT_ERROR with its exit code and stderr."""
    result, _ = run(settings, workdir, "crash")
    assert result.error_code == ErrorCode.AGENT_ERROR
    assert result.error_message is not None
    assert "exited with code 1" in result.error_message
    assert "fake crash" in result.error_message


def test_hang_after_result_is_killed(settings: Settings, workdir: Path) -> None:
    """A CLI that hangs after its result (ignoring SIGTERM) is killed with its children."""
    result, adapter = run(settings, workdir, "hang_after_result")
    assert result.success
    assert result.text == "done, then hanging"
    assert adapter.pid is not None
    assert not live_group_members(adapter.pid)


def test_stall_times_out(settings: Settings, workdir: Path) -> None:
    """Silence for the idle timeout is TIMEOUT and leaves no process behind."""
    result, adapter = run(settings, workdir, "stall", idle_timeout_s=0.5)
    assert result.error_code == ErrorCode.TIMEOUT
    assert adapter.pid is not None
    assert not live_group_members(adapter.pid)


def test_garbage_lines_are_survived(settings: Settings, workdir: Path) -> None:
    """Debug noise and a truncated JSON line do not break the run."""
    result, _ = run(settings, workdir, "garbage")
    assert result.success
    assert result.text == "Done: do it"


def test_cancel_leaves_no_process(settings: Settings, workdir: Path) -> None:
    """Cancel mid-run stops the CLI and the tool processes it started."""
    adapter = FakeAgentAdapter(settings)
    events = Events()
    started = threading.Event()

    def on_event(event: Any) -> None:
        events(event)
        started.set()

    results: list[AgentResult] = []
    request = AgentRequest(prompt="go", cwd=workdir, provider_options={"scenario": "stall"})
    worker = threading.Thread(target=lambda: results.append(adapter.run(request, on_event)))
    worker.start()
    assert started.wait(10)
    adapter.cancel()
    worker.join(10)
    assert results[0].cancelled
    assert adapter.pid is not None
    assert not live_group_members(adapter.pid)


def test_missing_binary(settings: Settings, workdir: Path) -> None:
    """A claude binary that is not installed is AGENT_ERROR of kind config, and unavailable."""
    adapter = ClaudeCodeAdapter(settings.with_overrides(claude_bin=str(workdir / "nope")))
    assert not adapter.check_available(1.0).ok
    result = adapter.run(AgentRequest(prompt="hi", cwd=workdir), Events())
    assert result.error_code == ErrorCode.AGENT_ERROR
    assert result.error_kind == "config"

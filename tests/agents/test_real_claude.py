"""The real `claude` CLI (npm @anthropic-ai/claude-code, pinned) against a mock Messages API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rdev.agents.base import AgentRequest
from rdev.agents.claude_code import ClaudeCodeAdapter
from rdev.codes import ErrorCode
from rdev.config import Settings
from tests.agents.conftest import Events, cancel_mid_run, live_group_members, npm_binary
from tests.agents.mock_anthropic import (
    FILE_CONTENT,
    FILE_NAME,
    FINAL_TEXT,
    Behaviour,
    MockAnthropic,
)

pytestmark = pytest.mark.agents


@pytest.fixture
def claude_settings(settings: Settings) -> Settings:
    """Settings that run the npm-installed claude."""
    return settings.with_overrides(claude_bin=npm_binary("claude"))


def start_mock(monkeypatch: pytest.MonkeyPatch, behaviour: Behaviour) -> MockAnthropic:
    """A mock API that the worker's environment points the agent at (as operators do)."""
    mock = MockAnthropic(behaviour).__enter__()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", mock.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-any")
    return mock


@pytest.fixture
def mock_api(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MockAnthropic]:
    """The mock API, with the behaviour given by indirect parametrization (default: write)."""
    mock = start_mock(monkeypatch, getattr(request, "param", Behaviour()))
    yield mock
    mock.__exit__(None, None, None)


def agent_request(workdir: Path, tmp_path: Path, **fields: object) -> AgentRequest:
    """A request with its own HOME so the CLI's session files stay in the test's directory."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return AgentRequest(prompt="write the file", cwd=workdir, env={"HOME": str(home)}, **fields)  # type: ignore[arg-type]


def test_run_writes_file_and_reports_cost(
    claude_settings: Settings, mock_api: MockAnthropic, workdir: Path, tmp_path: Path
) -> None:
    """A real run writes the file in the working directory and returns cost and session id."""
    events = Events()
    result = ClaudeCodeAdapter(claude_settings).run(agent_request(workdir, tmp_path), events)
    assert result.success, result
    assert (workdir / FILE_NAME).read_text() == FILE_CONTENT
    assert result.text == FINAL_TEXT
    assert result.cost_usd > 0
    assert result.turns == 2
    assert result.session_id
    assert len(result.session_id) == 36
    assert result.input_tokens > 0
    assert result.output_tokens > 0
    assert events.kinds()[0] == "init"
    assert {"tool_use", "tool_result", "text", "result"} <= set(events.kinds())


@pytest.mark.parametrize(
    "mock_api",
    [Behaviour(mode="status", status=401, error_type="authentication_error")],
    indirect=True,
)
def test_401_is_auth_failed_within_seconds(
    claude_settings: Settings, mock_api: MockAnthropic, workdir: Path, tmp_path: Path
) -> None:
    """A 401 from the API ends the run at the CLI's first api_retry: AUTH_FAILED in under 10 s."""
    events = Events()
    started = time.monotonic()
    result = ClaudeCodeAdapter(claude_settings).run(agent_request(workdir, tmp_path), events)
    elapsed = time.monotonic() - started
    assert result.error_code == ErrorCode.AUTH_FAILED
    assert elapsed < 10
    assert events.kinds().count("retry") == 1


@pytest.mark.parametrize(
    "mock_api",
    [Behaviour(mode="status", status=429, error_type="rate_limit_error", retry_after_s=30)],
    indirect=True,
)
def test_429_is_rate_limited_with_retry_after(
    claude_settings: Settings, mock_api: MockAnthropic, workdir: Path, tmp_path: Path
) -> None:
    """A 429 with retry-after 30 is RATE_LIMITED with a 30 s retry-after."""
    result = ClaudeCodeAdapter(claude_settings).run(agent_request(workdir, tmp_path), Events())
    assert result.error_code == ErrorCode.RATE_LIMITED
    assert result.retry_after_s == 30


@pytest.mark.parametrize("mock_api", [Behaviour(mode="hang")], indirect=True)
def test_cancel_mid_run_leaves_no_process(
    claude_settings: Settings, mock_api: MockAnthropic, workdir: Path, tmp_path: Path
) -> None:
    """Cancel while the CLI waits on the API stops it and everything in its process group."""
    adapter = ClaudeCodeAdapter(claude_settings)
    result = cancel_mid_run(adapter, agent_request(workdir, tmp_path), mock_api)
    assert result.cancelled
    assert adapter.pid is not None
    assert live_group_members(adapter.pid) == []


def test_resume_receives_session_id(
    claude_settings: Settings, mock_api: MockAnthropic, workdir: Path, tmp_path: Path
) -> None:
    """A second run with the first run's session id continues that conversation."""
    first = ClaudeCodeAdapter(claude_settings).run(agent_request(workdir, tmp_path), Events())
    assert first.success
    assert first.session_id
    calls_before = len(mock_api.behaviour.requests)
    second = ClaudeCodeAdapter(claude_settings).run(
        agent_request(workdir, tmp_path, session_id=first.session_id), Events()
    )
    assert second.success, second
    assert second.session_id == first.session_id
    resumed = [
        r["body"] for r in mock_api.behaviour.requests[calls_before:] if r["body"].get("tools")
    ]
    assert resumed
    history = resumed[0]["messages"]
    assert len(history) > 1  # the first run's turns were sent again
    assert "write the file" in str(history[0]["content"])

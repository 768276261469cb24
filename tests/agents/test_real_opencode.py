"""The real `opencode serve` (npm opencode-ai, pinned) against a mock Messages API."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rdev.agents.base import AgentRequest
from rdev.agents.opencode import OpenCodeAdapter
from rdev.config import Settings
from tests.agents.conftest import Events, cancel_mid_run, npm_binary
from tests.agents.mock_anthropic import (
    FILE_CONTENT,
    FILE_NAME,
    FINAL_TEXT,
    Behaviour,
    MockAnthropic,
)

pytestmark = pytest.mark.agents
PASSWORD = "test-password"


def configure(workdir: Path, mock: MockAnthropic) -> None:
    """Point OpenCode's project config at the mock (real-agents.md)."""
    config = {
        "model": "anthropic/claude-sonnet-4-5",
        "provider": {"anthropic": {"options": {"baseURL": mock.url + "/v1", "apiKey": "any"}}},
        "autoupdate": False,
        "share": "disabled",
    }
    (workdir / "opencode.json").write_text(json.dumps(config))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private HOME for OpenCode's data and caches, shared by this module's tests."""
    return tmp_path_factory.mktemp("opencode-home")


def test_owned_server_success_with_cost_and_tokens(
    settings: Settings, workdir: Path, home: Path
) -> None:
    """Without a configured URL the adapter runs its own server; the run writes and sums cost."""
    with MockAnthropic() as mock:
        configure(workdir, mock)
        adapter = OpenCodeAdapter(settings.with_overrides(opencode_bin=npm_binary("opencode")))
        events = Events()
        request = AgentRequest(prompt="write the file", cwd=workdir, env={"HOME": str(home)})
        result = adapter.run(request, events)
    assert result.success, result
    assert (workdir / FILE_NAME).read_text() == FILE_CONTENT
    assert result.text == FINAL_TEXT
    assert result.session_id
    assert result.session_id.startswith("ses_")
    assert result.cost_usd > 0
    assert (result.input_tokens, result.output_tokens) == (200, 40)  # two calls of 100 in, 20 out
    assert {"init", "tool_use", "tool_result", "text", "result"} <= set(events.kinds())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def opencode_server(
    home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path, MockAnthropic]]:
    """A password-protected `opencode serve` started once for this module, in its own project
    directory, with a mock API that never answers (so runs stay busy until aborted)."""
    project = tmp_path_factory.mktemp("opencode-project")
    with MockAnthropic(Behaviour(mode="hang")) as mock:
        configure(project, mock)
        port = _free_port()
        env = {**os.environ, "HOME": str(home), "OPENCODE_SERVER_PASSWORD": PASSWORD}
        argv = [npm_binary("opencode"), "serve", "--port", str(port), "--hostname", "127.0.0.1"]
        server = subprocess.Popen(
            argv,
            cwd=project,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(url)
            yield url, project, mock
        finally:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/global/health", auth=("opencode", PASSWORD)).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail("opencode serve did not become healthy")


def test_configured_server_abort(
    settings: Settings, opencode_server: tuple[str, Path, MockAnthropic]
) -> None:
    """Cancel aborts the session on a configured server: the turn ends with MessageAbortedError."""
    url, workdir, mock = opencode_server
    configured = settings.with_overrides(opencode_url=url, opencode_password=PASSWORD)
    adapter = OpenCodeAdapter(configured)
    assert adapter.check_available(5.0).ok
    result = cancel_mid_run(adapter, AgentRequest(prompt="write the file", cwd=workdir), mock)
    assert result.cancelled
    session = result.session_id
    headers = {"x-opencode-directory": str(workdir)}
    auth = ("opencode", PASSWORD)
    messages = httpx.get(f"{url}/session/{session}/message", headers=headers, auth=auth).json()
    assistant = [m["info"] for m in messages if m["info"]["role"] == "assistant"]
    assert assistant[-1]["error"]["name"] == "MessageAbortedError"
    status = httpx.get(f"{url}/session/status", headers=headers, auth=auth).json()
    assert status.get(session, {"type": "idle"})["type"] == "idle"


def test_wrong_password_is_unavailable(
    settings: Settings, opencode_server: tuple[str, Path, MockAnthropic]
) -> None:
    """A configured server that refuses the password is not advertised."""
    configured = settings.with_overrides(opencode_url=opencode_server[0], opencode_password="no")
    check = OpenCodeAdapter(configured).check_available(5.0)
    assert not check.ok
    assert "401" in check.detail

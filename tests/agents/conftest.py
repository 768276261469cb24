"""Fixtures for the agent adapter tests: fast settings, a claudebox server, the npm agents."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from rdev.agents import claudebox_server
from rdev.agents.base import AgentAdapter, AgentEvent, AgentRequest, AgentResult
from rdev.config import Settings

REPO = Path(__file__).resolve().parents[2]
NODE_BIN = REPO / "node_modules" / ".bin"


@pytest.fixture
def settings() -> Settings:
    """Settings with short stop-ladder waits so cancel and kill tests stay fast."""
    return Settings(
        agent_stop_grace_s=0.5,
        agent_result_grace_s=0.5,
        agent_idle_timeout_s=30,
        agent_api_retry_budget=0,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty working directory for one agent run."""
    path = tmp_path / "work"
    path.mkdir()
    return path


class Events(list[AgentEvent]):
    """An event callback that records what it was given."""

    def __call__(self, event: AgentEvent) -> None:
        self.append(event)

    def kinds(self) -> list[str]:
        """The kinds seen, in order."""
        return [str(event.kind) for event in self]


@pytest.fixture
def events() -> Events:
    """A recording event callback."""
    return Events()


def cancel_mid_run(adapter: AgentAdapter, request: AgentRequest, mock: Any) -> AgentResult:
    """Run `adapter` in a thread, cancel it once the agent asked the mock API with tools."""
    results: list[AgentResult] = []
    worker = threading.Thread(target=lambda: results.append(adapter.run(request, Events())))
    worker.start()
    deadline = time.monotonic() + 30
    while not any(r["body"].get("tools") for r in mock.behaviour.requests):
        assert time.monotonic() < deadline, f"{adapter.name} never called the API"
        time.sleep(0.05)
    adapter.cancel()
    worker.join(30)
    assert results, f"{adapter.name} did not return after cancel"
    return results[0]


def npm_binary(name: str) -> str:
    """The path of an npm-installed agent CLI; fails in CI and skips elsewhere when missing."""
    path = NODE_BIN / name
    if path.exists() or shutil.which(str(path)):
        return str(path)
    message = f"{path} is not installed (run .ci/setup.d/20-agents.sh)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def live_group_members(pgid: int) -> list[int]:
    """Processes of group `pgid` that are still running (zombies waiting for init do not count)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


class ServerThread:
    """A WSGI app served on 127.0.0.1 with a free port, in a daemon thread."""

    def __init__(self, app: object) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)  # type: ignore[arg-type]
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def claudebox(settings: Settings) -> Iterator[ServerThread]:
    """A real claudebox server whose default provider is the fake Claude CLI."""
    served = ServerThread(claudebox_server.create_app(settings.with_overrides(agent="fake")))
    yield served
    served.close()

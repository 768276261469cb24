"""The claudebox sidecar: the real server's API, and the client adapter running through it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rdev.agents.base import AgentRequest
from rdev.agents.claudebox import ClaudeboxAdapter, ClaudeboxClient
from rdev.agents.claudebox_server import create_app
from rdev.agents.httpcalls import HttpError
from rdev.codes import ErrorCode
from rdev.config import Settings
from tests.agents.conftest import Events, ServerThread


@pytest.fixture
def fast_claudebox(settings: Settings) -> Iterator[ServerThread]:
    """A claudebox server with 0.2 s heartbeats, so a vanished client is noticed quickly."""
    served = ServerThread(create_app(settings.with_overrides(agent="fake"), heartbeat_s=0.2))
    yield served
    served.close()


def adapter_for(settings: Settings, server: ServerThread) -> ClaudeboxAdapter:
    """A client adapter pointed at `server`."""
    return ClaudeboxAdapter(settings.with_overrides(claudebox_url=server.url))


def test_health_lists_local_providers(claudebox: ServerThread) -> None:
    """/health reports each provider of the sidecar (never itself) with its availability."""
    health = ClaudeboxClient(claudebox.url).health()
    assert health["healthy"] is True
    assert health["default"] == "fake"
    assert "claudebox" not in health["providers"]
    assert health["providers"]["fake"]["available"] is True
    assert health["providers"]["fake"]["capabilities"]["cancel"] is True


def test_run_through_sidecar(settings: Settings, claudebox: ServerThread, workdir: Path) -> None:
    """A run relays the agent's events (raw lines included) and returns the sidecar's result."""
    events = Events()
    result = adapter_for(settings, claudebox).run(AgentRequest(prompt="hi", cwd=workdir), events)
    assert result.success
    assert result.text == "Done: hi"
    assert (workdir / "fake-claude.txt").exists()
    assert events.kinds() == ["init", "tool_use", "tool_result", "text", "rate_limit", "result"]
    assert json.loads(events[0].raw)["type"] == "system"


def test_provider_option_picks_sidecar_adapter(
    settings: Settings, claudebox: ServerThread, workdir: Path
) -> None:
    """`provider_options.provider` names the sidecar's provider; the rest is forwarded to it."""
    request = AgentRequest(
        prompt="hi", cwd=workdir, provider_options={"provider": "fake", "scenario": "auth"}
    )
    result = adapter_for(settings, claudebox).run(request, Events())
    assert result.error_code == ErrorCode.AUTH_FAILED


def test_unknown_sidecar_provider_is_invalid_spec(
    settings: Settings, claudebox: ServerThread, workdir: Path
) -> None:
    """An unknown provider is refused by the sidecar with 400, which the client reports as
    INVALID_SPEC carrying the status and body."""
    request = AgentRequest(prompt="hi", cwd=workdir, provider_options={"provider": "nope"})
    result = adapter_for(settings, claudebox).run(request, Events())
    assert result.error_code == ErrorCode.INVALID_SPEC
    assert result.error_message is not None
    assert "HTTP 400" in result.error_message
    assert "unknown agent provider 'nope'" in result.error_message


def test_execute_validates_the_request(claudebox: ServerThread, workdir: Path) -> None:
    """/execute answers 400 with the field at fault before running anything."""
    body = {"request": {"prompt": "", "cwd": str(workdir)}}
    response = httpx.post(claudebox.url + "/execute", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "INVALID_SPEC"
    assert error["details"]["field"] == "prompt"


def test_cancel_unknown_run(claudebox: ServerThread) -> None:
    """Cancelling a run the sidecar does not know answers 404."""
    assert httpx.post(claudebox.url + "/execute/nope/cancel").status_code == 404


def processes_in(directory: Path) -> list[int]:
    """Live processes whose working directory is `directory`."""
    found = []
    for cwd in Path("/proc").glob("[0-9]*/cwd"):
        try:
            if Path(os.readlink(cwd)) == directory:
                found.append(int(cwd.parent.name))
        except OSError:
            continue  # gone, or not ours to read
    return found


def test_client_disconnect_cancels_the_run(fast_claudebox: ServerThread, workdir: Path) -> None:
    """A client that hangs up mid-run makes the sidecar stop the agent and its processes."""
    body = {"request": {"prompt": "[scenario:stall] go", "cwd": str(workdir)}}
    with httpx.stream("POST", fast_claudebox.url + "/execute", json=body) as response:
        lines = (json.loads(line) for line in response.iter_lines())
        first = next(line for line in lines if line["type"] != "heartbeat")
        assert first["event"]["kind"] == "init"
        assert processes_in(workdir)
    deadline = time.monotonic() + 20
    while processes_in(workdir):
        assert time.monotonic() < deadline, "the agent outlived its client"
        time.sleep(0.1)


def git(*args: str, cwd: Path | None = None) -> str:
    """Run git in a test (identity given inline)."""
    argv = ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(argv, cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A bare repository with one commit on main."""
    seed, bare = tmp_path / "seed", tmp_path / "origin.git"
    seed.mkdir()
    git("init", "-q", "-b", "main", cwd=seed)
    (seed / "README.md").write_text("hello\n")
    git("add", ".", cwd=seed)
    git("commit", "-q", "-m", "seed", cwd=seed)
    git("clone", "-q", "--bare", str(seed), str(bare))
    return bare


def test_clone_commit_and_push(claudebox: ServerThread, origin: Path, tmp_path: Path) -> None:
    """The sidecar clones, commits the agent's changes and pushes them to a new branch."""
    client = ClaudeboxClient(claudebox.url)
    dest = tmp_path / "clone"
    cloned = client.git_clone(f"file://{origin}", dest, branch="main")
    assert cloned["branch"] == "main"
    assert cloned["sha"] == git("rev-parse", "main", cwd=origin).strip()
    (dest / "new.txt").write_text("change\n")
    done = client.commit_and_push(dest, "agent change", push=True, branch="rdev/task-1")
    assert done["committed"] is True
    assert done["pushed"] is True
    assert done["files_changed"] == ["new.txt"]
    assert git("rev-parse", "rdev/task-1", cwd=origin).strip() == done["sha"]


def test_commit_with_nothing_to_commit(
    claudebox: ServerThread, origin: Path, tmp_path: Path
) -> None:
    """Commit-and-push on an unchanged tree commits nothing."""
    client = ClaudeboxClient(claudebox.url)
    client.git_clone(str(origin), tmp_path / "clone")
    done = client.commit_and_push(tmp_path / "clone", "nothing", push=True)
    assert done == {"sha": None, "committed": False, "pushed": False, "files_changed": []}


def test_clone_failure_hides_credentials(claudebox: ServerThread, tmp_path: Path) -> None:
    """A repository that cannot be cloned is INVALID_SPEC, and the URL's password never shows."""
    client = ClaudeboxClient(claudebox.url)
    with pytest.raises(HttpError) as caught:
        client.git_clone("http://bot:s3cret@127.0.0.1:9/repo.git", tmp_path / "clone")
    assert caught.value.status == 400
    assert "INVALID_SPEC" in caught.value.message
    assert "s3cret" not in caught.value.message


def test_sdlc_runs_a_command(claudebox: ServerThread, tmp_path: Path) -> None:
    """/sdlc runs a command in the given directory and returns its exit code and output."""
    argv = [sys.executable, "-c", "import os; print('in', os.getcwd()); raise SystemExit(3)"]
    done = ClaudeboxClient(claudebox.url).sdlc(tmp_path, argv, timeout_s=30)
    assert done["exit_code"] == 3
    assert done["timed_out"] is False
    assert f"in {tmp_path}" in done["output_tail"]


def test_availability(settings: Settings, claudebox: ServerThread) -> None:
    """The adapter is available only with a reachable sidecar URL."""
    assert not ClaudeboxAdapter(settings).check_available(1.0).ok
    assert adapter_for(settings, claudebox).check_available(5.0).ok
    unreachable = settings.with_overrides(claudebox_url="http://127.0.0.1:9")
    assert not ClaudeboxAdapter(unreachable).check_available(1.0).ok


def test_claudebox_command_serves(settings: Settings, workdir: Path, tmp_path: Path) -> None:
    """The `claudebox` CLI command serves the API in its own process."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = (
        "import sys; from rdev.agents.claudebox_server import claudebox_command; "
        "claudebox_command()(sys.argv[1:])"
    )
    env = {**os.environ, "RDEV_AGENT": "fake"}
    server = subprocess.Popen(
        [sys.executable, "-c", code, "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _healthy(url):
            assert server.poll() is None, "rdev claudebox exited"
            assert time.monotonic() < deadline, "rdev claudebox never answered"
            time.sleep(0.1)
        adapter = ClaudeboxAdapter(settings.with_overrides(claudebox_url=url))
        result = adapter.run(AgentRequest(prompt="hi", cwd=workdir), Events())
        assert result.success
    finally:
        server.terminate()
        server.wait(10)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=5).is_success
    except httpx.HTTPError:
        return False

"""Limits and failures of a running build: time limit, cancel, rejected push, secrets."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from tests.execution import gitrepos
from tests.execution.githttp import GitHttp
from tests.execution.harness import Harness
from tests.support.processes import wait_for

pytestmark = pytest.mark.e2e


def processes_in(directory: Path) -> list[int]:
    """PIDs of processes whose working directory is inside `directory`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if cwd == str(directory) or cwd.startswith(f"{directory}/"):
            found.append(int(entry))
    return found


def _stalling_build(harness: Harness, tmp_path: Path, **fields: object) -> tuple[dict, Path]:
    bare = gitrepos.bare_repo(tmp_path, "stall", {"README.md": "x\n"})
    task = harness.enqueue("build", {"git_clone_url": gitrepos.url(bare), "agent": "fake",
                                     "prompt": "[scenario:stall] think forever"}, **fields)
    harness.wait_event(task["id"], "agent.init")
    workspace = harness.settings.workspaces / f"{task['id']}.1"
    assert workspace.is_dir()
    wait_for(lambda: len(processes_in(workspace)) >= 2, 10, "the agent and its tool process")
    return task, workspace


def test_cancel_mid_build_kills_the_agent_and_removes_the_workspace(
    harness: Harness, tmp_path: Path
) -> None:
    """Cancelling a running build stops its process tree quickly and cleans the workspace."""
    task, workspace = _stalling_build(harness, tmp_path)
    response = harness.client.post(f"/work/{task['id']}/cancel")
    assert response.status_code == 200
    done = harness.wait(task["id"], "cancelled", timeout=15)
    assert done["attempts"][-1]["outcome"] == "cancelled"
    assert processes_in(workspace) == []
    assert not workspace.exists()


def test_time_limit_stops_the_agent_as_timeout(harness: Harness, tmp_path: Path) -> None:
    """A build past its timeout_s ends as TIMEOUT, with no process or workspace left."""
    task, workspace = _stalling_build(harness, tmp_path, timeout_s=6, max_retries=0)
    done = harness.wait(task["id"], "failed", timeout=20)
    assert done["error_code"] == "TIMEOUT"
    assert processes_in(workspace) == []
    assert not workspace.exists()


def test_rejected_push_fails_the_build(harness: Harness, tmp_path: Path) -> None:
    """A push the remote refuses is a failure naming the rejection, not a success."""
    bare = gitrepos.bare_repo(tmp_path, "locked", {"README.md": "x\n"})
    before = gitrepos.head(bare, "main")
    gitrepos.reject_pushes(bare)
    task = harness.enqueue("build", {"git_clone_url": gitrepos.url(bare), "agent": "fake",
                                     "prompt": "change", "auto_push": True}, max_retries=0)
    done = harness.wait(task["id"], "failed")
    assert done["error_code"] == "AGENT_ERROR"
    assert "push to main was rejected" in done["error"]
    assert "protected: pushes are not allowed" in done["error"]
    assert "fake-claude.txt) was not pushed" in done["error"]
    assert gitrepos.head(bare, "main") == before
    kinds = harness.kinds(task["id"])
    assert "commit" in kinds
    assert "push" not in kinds


def test_credentials_in_clone_url_are_used_but_never_shown(
    harness: Harness, tmp_path: Path
) -> None:
    """A token in the clone URL authenticates clone and push yet appears nowhere in the task."""
    secret = "s3cr3t-token-value"
    gitrepos.bare_repo(tmp_path, "private", {"README.md": "x\n"})
    server = GitHttp(tmp_path, "bot", secret)
    try:
        url = server.url.replace("http://", f"http://bot:{secret}@") + "/private.git"
        task = harness.enqueue("build", {"git_clone_url": url, "agent": "fake",
                                         "prompt": "private change", "auto_push": True})
        done = harness.wait(task["id"], "completed", "failed")
    finally:
        server.close()
    assert done["status"] == "completed", done["error"]
    assert done["result"]["pushed"] is True
    assert gitrepos.show(tmp_path / "private.git", "main", "fake-claude.txt")
    shown = json.dumps([done, harness.events(task["id"])])
    assert secret not in shown
    assert "***@" in done["spec"]["git_clone_url"]
    assert server.seen_auth.count(server.expected) >= 2  # clone and push both authenticated
    assert secret not in harness.worker.output()


def test_workspace_left_by_a_dead_attempt_is_swept(harness: Harness, tmp_path: Path) -> None:
    """A directory a crashed attempt left behind is removed when the worker starts another."""
    leftover = harness.settings.workspaces / f"{uuid.uuid4()}.1"
    (leftover / "repo").mkdir(parents=True)
    bare = gitrepos.bare_repo(tmp_path, "sweep", {"README.md": "x\n"})
    task = harness.enqueue("test", {"git_clone_url": gitrepos.url(bare), "command": ["true"]})
    harness.wait(task["id"], "completed")
    assert not leftover.exists()


def test_agent_never_sees_the_credentials(harness: Harness, tmp_path: Path) -> None:
    """While the agent runs, neither the clone's git config nor its environment holds the token."""
    secret = "agent-must-not-see-this"
    gitrepos.bare_repo(tmp_path, "hidden", {"README.md": "x\n"})
    server = GitHttp(tmp_path, "bot", secret)
    try:
        url = server.url.replace("http://", f"http://bot:{secret}@") + "/hidden.git"
        task = harness.enqueue("build", {"git_clone_url": url, "agent": "fake",
                                         "prompt": "[scenario:stall] look around"})
        harness.wait_event(task["id"], "agent.init")
        workspace = harness.settings.workspaces / f"{task['id']}.1"
        config = (workspace / "repo" / ".git" / "config").read_text()
        agents = processes_in(workspace)
        environments = [Path(f"/proc/{pid}/environ").read_bytes() for pid in agents]
        harness.client.post(f"/work/{task['id']}/cancel")
        harness.wait(task["id"], "cancelled", timeout=15)
    finally:
        server.close()
    assert server.url in config
    assert secret not in config
    assert agents
    assert all(secret.encode() not in env for env in environments)
    assert all(server.expected.split()[-1].encode() not in env for env in environments)
    assert all(b"GIT_CONFIG_VALUE" not in env for env in environments)

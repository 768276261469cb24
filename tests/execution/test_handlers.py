"""The four task types end to end: a real worker, real git remotes, stand-in CLIs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.execution import gitrepos
from tests.execution.harness import Harness

pytestmark = pytest.mark.e2e


def test_build_with_fake_agent_commits_and_pushes(harness: Harness, tmp_path: Path) -> None:
    """A build clones, runs the agent, commits its file and pushes it to the branch."""
    bare = gitrepos.bare_repo(tmp_path, "app", {"README.md": "app\n"})
    task = harness.enqueue("build", {"git_clone_url": gitrepos.url(bare), "prompt": "add a file",
                                     "agent": "fake", "auto_commit": True, "auto_push": True})
    done = harness.wait(task["id"], "completed", "failed")
    result = done["result"]
    assert done["status"] == "completed", done["error"]
    assert result["pushed"] is True
    assert result["files_changed"] == ["fake-claude.txt"]
    assert gitrepos.head(bare, "main") == result["commit_sha"]
    assert gitrepos.show(bare, "main", "fake-claude.txt") == "add a file\n"
    assert result["session_id"]
    assert result["cost_usd"] > 0
    assert harness.workspaces() == [] or all(p.name[:36] != task["id"]
                                              for p in harness.workspaces())


def test_build_with_nothing_to_commit_succeeds(harness: Harness, tmp_path: Path) -> None:
    """An agent that changes nothing yields a completed build with no commit."""
    bare = gitrepos.bare_repo(tmp_path, "same", {"fake-claude.txt": "same\n"})
    task = harness.enqueue("build", {"git_clone_url": gitrepos.url(bare), "prompt": "same",
                                     "agent": "fake", "auto_push": True})
    done = harness.wait(task["id"], "completed", "failed")
    assert done["status"] == "completed", done["error"]
    assert done["result"]["commit_sha"] is None
    assert done["result"]["pushed"] is False


def test_sdlc_runs_the_cli_with_args_and_pushes(harness: Harness, tmp_path: Path) -> None:
    """sdlc runs RDEV_SDLC_BIN with command and args (no shell) and pushes the change."""
    bare = gitrepos.bare_repo(tmp_path, "sdlc", {"README.md": "x\n"})
    args = ["--title", "a b; rm -rf /", "$HOME"]
    task = harness.enqueue("sdlc", {"git_clone_url": gitrepos.url(bare), "command": "plan",
                                    "args": args, "auto_commit": True, "auto_push": True})
    done = harness.wait(task["id"], "completed", "failed")
    assert done["status"] == "completed", done["error"]
    assert done["result"]["exit_code"] == 0
    assert "sdlc plan --title a b; rm -rf / $HOME" in done["result"]["output_tail"]
    assert gitrepos.show(bare, "main", "sdlc-plan.txt").splitlines() == args


@pytest.mark.parametrize("command", ["selfcommit", "gpgsign"])
def test_sdlc_changes_reach_the_remote_whatever_the_cli_did_to_git(
    harness: Harness, tmp_path: Path, command: str
) -> None:
    """Commits the CLI made itself are pushed; git config it changed is undone before commit."""
    bare = gitrepos.bare_repo(tmp_path, command, {"README.md": "x\n"})
    task = harness.enqueue("sdlc", {"git_clone_url": gitrepos.url(bare), "command": command,
                                    "auto_push": True}, max_retries=0)
    done = harness.wait(task["id"], "completed", "failed")
    assert done["status"] == "completed", done["error"]
    assert done["result"]["files_changed"] == [f"sdlc-{command}.txt"]
    assert gitrepos.head(bare, "main") == done["result"]["commit_sha"]


def test_sdlc_failure_fails_the_task(harness: Harness, tmp_path: Path) -> None:
    """A non-zero exit of the SDLC CLI fails the task with its output."""
    bare = gitrepos.bare_repo(tmp_path, "sdlcfail", {"README.md": "x\n"})
    task = harness.enqueue("sdlc", {"git_clone_url": gitrepos.url(bare), "command": "fail"},
                           max_retries=0)
    done = harness.wait(task["id"], "failed")
    assert done["error_code"] == "AGENT_ERROR"
    assert "exited 3" in done["error"]
    assert "the plan is invalid" in done["error"]


@pytest.mark.parametrize(("script", "passed", "code"), [("exit 0", True, 0), ("exit 4", False, 4)])
def test_test_task_reports_pass_or_fail(
    harness: Harness, tmp_path: Path, script: str, passed: bool, code: int
) -> None:
    """A test task runs the command in the clone and reports passed/failed with its tail."""
    check = f"echo running the suite\n{script}\n"
    bare = gitrepos.bare_repo(tmp_path, "tests", {"check.sh": check})
    task = harness.enqueue("test", {"git_clone_url": gitrepos.url(bare),
                                    "command": ["sh", "check.sh"]})
    done = harness.wait(task["id"], "completed", "failed")
    assert done["status"] == "completed", done["error"]
    assert done["result"]["passed"] is passed
    assert done["result"]["exit_code"] == code
    assert "running the suite" in done["result"]["output_tail"]


def test_deploy_sets_image_and_waits_for_rollout(harness: Harness) -> None:
    """deploy calls kubectl set image then rollout status, with context and namespace."""
    task = harness.enqueue("deploy", {"deployment": "web", "image": "reg/web:2",
                                      "container": "app"})
    done = harness.wait(task["id"], "completed", "failed")
    assert done["status"] == "completed", done["error"]
    assert done["result"]["rollout_status"] == "complete"
    calls = [json.loads(line) for line in harness.kubectl_record.read_text().splitlines()]
    base = ["--context", "test-context", "--namespace", "apps"]
    assert [*base, "set", "image", "deployment/web", "app=reg/web:2"] in calls
    assert [*base, "rollout", "status", "deployment/web", "--timeout=300s"] in calls


def test_deploy_of_missing_deployment_is_invalid(harness: Harness) -> None:
    """A deployment kubectl cannot find fails with INVALID_SPEC."""
    task = harness.enqueue("deploy", {"deployment": "missing", "image": "reg/web:2"})
    done = harness.wait(task["id"], "failed")
    assert done["error_code"] == "INVALID_SPEC"


def test_clone_of_missing_repo_is_invalid_spec(harness: Harness, tmp_path: Path) -> None:
    """A clone URL that points at no repository fails at once with INVALID_SPEC."""
    task = harness.enqueue("test", {"git_clone_url": f"file://{tmp_path}/nothing.git",
                                    "command": ["true"]})
    done = harness.wait(task["id"], "failed")
    assert done["error_code"] == "INVALID_SPEC"
    assert done["retry_count"] == 0

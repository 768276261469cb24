"""Builds with the real agent CLIs (Claude Code, OpenCode) against the mock Messages API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.agents import mock_anthropic
from tests.execution import gitrepos
from tests.execution.harness import Harness, require_binary

pytestmark = [pytest.mark.e2e, pytest.mark.agents]


def _in_order(kinds: list[str], expected: list[str]) -> bool:
    """True when `expected` appears in `kinds` as a subsequence."""
    remaining = iter(kinds)
    return all(kind in remaining for kind in expected)


def _build(harness: Harness, tmp_path: Path, agent: str) -> tuple[Path, dict[str, Any]]:
    bare = gitrepos.bare_repo(tmp_path, agent, {"README.md": "hello\n"})
    task = harness.enqueue("build", {
        "git_clone_url": gitrepos.url(bare), "prompt": "Write hello.txt", "agent": agent,
        "auto_commit": True, "auto_push": True,
    }, max_retries=0, timeout_s=120)
    done = harness.wait(task["id"], "completed", "failed", timeout=120)
    assert done["status"] == "completed", done["error"]
    return bare, done


def test_build_with_claude_code_pushes_the_agents_file(harness: Harness, tmp_path: Path) -> None:
    """The real `claude` writes hello.txt through the mock; rdev commits and pushes it."""
    require_binary("claude")
    bare, done = _build(harness, tmp_path, "claude")
    result = done["result"]
    assert gitrepos.show(bare, "main", mock_anthropic.FILE_NAME) == mock_anthropic.FILE_CONTENT
    assert result["commit_sha"] == gitrepos.head(bare, "main")
    assert result["files_changed"] == [mock_anthropic.FILE_NAME]
    assert result["session_id"]
    assert result["cost_usd"] > 0
    assert result["turns"] >= 2
    assert mock_anthropic.FINAL_TEXT in result["text"]
    kinds = harness.kinds(done["id"])
    assert _in_order(kinds, ["cloned", "agent_started", "agent.init", "agent.tool_use",
                             "agent.result", "commit", "push"]), kinds


def test_build_with_opencode_pushes_the_agents_file(harness: Harness, tmp_path: Path) -> None:
    """The real `opencode serve` runs the same build; the pushed commit has its file."""
    require_binary("opencode")
    bare, done = _build(harness, tmp_path, "opencode")
    result = done["result"]
    assert gitrepos.show(bare, "main", mock_anthropic.FILE_NAME) == mock_anthropic.FILE_CONTENT
    assert result["session_id"].startswith("ses_")
    kinds = harness.kinds(done["id"])
    assert _in_order(kinds, ["cloned", "agent.init", "agent.tool_use", "agent.result", "commit",
                             "push"]), kinds

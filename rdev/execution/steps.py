"""What every built-in handler does around its main step: workspace, clone, events, commit, push.

A `Steps` object serves one attempt. Everything it writes to the event log goes through the
task's `Redactor` and is trimmed to a bounded size, so neither secrets nor megabytes of tool
output land in the database.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rdev import errors
from rdev.config import Settings
from rdev.context import TaskContext
from rdev.db import execution_queries
from rdev.db.engine import Database
from rdev.execution import commands, workspace
from rdev.execution.git import Git, Repo
from rdev.execution.redact import Redactor

MAX_EVENT_STRING = 2000
MAX_EVENT_ITEMS = 50


class Steps:
    """The shared steps of one attempt of a repository task."""

    def __init__(self, ctx: TaskContext) -> None:
        self.ctx = ctx
        self.redactor = Redactor.for_task(ctx.settings, ctx.spec)
        self.git = Git(ctx, self.redactor)
        self.started = time.monotonic()

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        """Append a redacted, size-bounded event to the task's log."""
        self.ctx.emit(kind, compact(self.redactor.value(data)))

    def elapsed_s(self) -> float:
        """Seconds since the attempt's handler started."""
        return round(time.monotonic() - self.started, 3)

    @contextmanager
    def workspace(self) -> Iterator[Path]:
        """A fresh workspace for this attempt, after sweeping what dead attempts left."""
        root = self.ctx.settings.workspaces
        workspace.sweep(root, functools.partial(is_live, self.ctx.settings))
        with workspace.attempt_workspace(root, self.ctx.task_id, self.ctx.attempt) as path:
            yield path

    def clone(self, into: Path) -> Repo:
        """Clone the spec's repository, recording the step."""
        spec = self.ctx.spec
        self.emit("clone_started", {"url": spec["git_clone_url"], "branch": spec.get("branch")})
        began = time.monotonic()
        repo = self.git.clone(spec, into)
        self.emit("cloned", {"branch": repo.branch, "sha": repo.base_sha,
                             "duration_s": round(time.monotonic() - began, 3)})
        return repo

    def command(self, argv: list[str], cwd: Path, timeout_s: float) -> commands.Completed:
        """Run a command for the task, recording its start and end; cut short on stop."""
        self.emit("command_started", {"argv": argv})
        done = commands.run(self.ctx, argv, cwd=cwd, timeout_s=timeout_s,
                            on_output=lambda text: self.emit("output", {"text": text}))
        self.ctx.check()
        self.emit("command_finished", {"argv": argv[:1], "exit_code": done.exit_code,
                                       "duration_s": done.duration_s, "timed_out": done.timed_out,
                                       "output_tail": self.tail(done.output)})
        return done

    def tail(self, output: str) -> str:
        """The redacted output tail a result carries."""
        return self.redactor.text(output[-self.ctx.settings.output_tail_chars :])

    def publish(self, repo: Repo, message: str) -> dict[str, Any]:
        """Commit (if `auto_commit`) and push (if `auto_push`) per the spec; the result fields."""
        spec = self.ctx.spec
        fields: dict[str, Any] = {"branch": repo.branch, "base_sha": repo.base_sha,
                                  "commit_sha": None, "files_changed": [], "pushed": False}
        if not spec.get("auto_commit", True):
            return fields
        made = self.git.commit(repo, message)
        if made is None:
            self.emit("commit", {"sha": None, "files_changed": [], "note": "nothing to commit"})
            return fields
        fields["commit_sha"], fields["files_changed"] = made
        self.emit("commit", {"sha": made[0], "files_changed": made[1]})
        if spec.get("auto_push", False):
            branch = spec.get("branch") or repo.branch or "main"
            self.emit("push_started", {"branch": branch})
            try:
                self.git.push(repo, branch)
            except errors.TaskFailure as failure:
                note = f"commit {made[0]} ({', '.join(made[1][:10])}) was not pushed"
                raise errors.TaskFailure(failure.code, f"{failure.message}\n{note}",
                                         details=failure.details) from None
            fields.update(branch=branch, pushed=True)
            self.emit("push", {"branch": branch, "sha": made[0]})
        return fields


def compact(value: Any, depth: int = 0) -> Any:
    """A JSON value trimmed for the event log: long strings cut, long lists shortened."""
    if isinstance(value, str):
        if len(value) <= MAX_EVENT_STRING:
            return value
        return value[:MAX_EVENT_STRING] + f"... [{len(value) - MAX_EVENT_STRING} more chars]"
    if depth > 8:
        return "..."
    if isinstance(value, dict):
        return {k: compact(v, depth + 1) for k, v in list(value.items())[:MAX_EVENT_ITEMS]}
    if isinstance(value, list):
        return [compact(v, depth + 1) for v in value[:MAX_EVENT_ITEMS]]
    return value


@functools.lru_cache(maxsize=4)
def _database(settings: Settings) -> Database:
    return Database(settings)


def is_live(settings: Settings, task_id: Any, attempt: int) -> bool:
    """True while `attempt` is the running attempt of the task (its workspace must stay)."""
    with _database(settings).session() as session:
        return execution_queries.attempt_is_running(session, task_id, attempt)

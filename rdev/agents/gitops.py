"""The git steps the claudebox sidecar performs for a worker: clone, and commit-and-push.

Every git call runs through `process.run_command` (own process group, hard timeout) with prompts
disabled. Clone URLs may carry credentials; `redact` removes them from anything returned or logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rdev.agents import process

GIT_TIMEOUT_S = 600.0
_USERINFO = re.compile(r"(\w+://)[^/@\s]+@")


class GitError(Exception):
    """A git command failed; the message is already free of credentials."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def redact(text: str) -> str:
    """`text` with `user:password@` removed from every URL."""
    return _USERINFO.sub(r"\1***@", text)


def git(args: list[str], cwd: Path | None = None, timeout_s: float = GIT_TIMEOUT_S) -> str:
    """Run `git args...`; returns the output, raises `GitError` (redacted) on failure."""
    env = process.agent_env({"GIT_TERMINAL_PROMPT": "0"})
    done = process.run_command(["git", *args], cwd=cwd, timeout_s=timeout_s, env=env)
    if done.exit_code != 0:
        what = "timed out" if done.timed_out else f"failed ({done.exit_code})"
        raise GitError(redact(f"git {args[0]} {what}: {done.output.strip()[-800:]}"))
    return done.output


@dataclass(frozen=True)
class Cloned:
    """Where a clone landed and what it checked out."""

    path: str
    sha: str
    branch: str


def clone(url: str, dest: Path, branch: str | None = None, depth: int | None = None) -> Cloned:
    """Clone `url` into `dest` (which must not exist yet or be empty)."""
    args = ["clone", "--quiet"]
    if depth:
        args += ["--depth", str(int(depth))]
    if branch:
        args += ["--branch", branch]
    git([*args, "--", url, str(dest)])
    sha = git(["rev-parse", "HEAD"], cwd=dest).strip()
    current = git(["rev-parse", "--abbrev-ref", "HEAD"], cwd=dest).strip()
    return Cloned(str(dest), sha, current)


@dataclass(frozen=True)
class Committed:
    """The outcome of commit-and-push; `sha` is None when there was nothing to commit."""

    sha: str | None
    files_changed: list[str]
    pushed: bool


def commit_and_push(
    path: Path,
    message: str,
    *,
    push: bool,
    branch: str | None = None,
    remote: str = "origin",
    author: tuple[str, str] = ("rdev", "rdev@localhost"),
) -> Committed:
    """Commit every change under `path`; push HEAD to `remote` (as `branch`) when asked."""
    git(["add", "--all"], cwd=path)
    status = git(["status", "--porcelain", "--untracked-files=all"], cwd=path)
    files = sorted(line[3:].strip() for line in status.splitlines() if line.strip())
    if not files:
        return Committed(None, [], False)
    name, email = author
    git(
        [
            "-c",
            f"user.name={name}",
            "-c",
            f"user.email={email}",
            "commit",
            "--quiet",
            "-m",
            message,
        ],
        cwd=path,
    )
    sha = git(["rev-parse", "HEAD"], cwd=path).strip()
    if push:
        target = f"HEAD:refs/heads/{branch}" if branch else "HEAD"
        git(["push", "--quiet", remote, target], cwd=path)
    return Committed(sha, files, push)

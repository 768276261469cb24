"""The git steps of a task: clone into the workspace, commit what changed, push it.

Credentials never reach disk or argv: they are stripped from the clone URL (so the workspace's
`.git/config` and the agent never see them) and handed to each git process as an
`http.extraHeader` through GIT_CONFIG_* environment variables. RDEV_GIT_TOKEN is used for
http(s) remotes whose URL carries no credentials. Every message is redacted before it leaves.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from rdev import errors
from rdev.agents import process
from rdev.codes import ErrorCode
from rdev.context import TaskContext
from rdev.execution import commands
from rdev.execution.redact import Redactor

NOT_FOUND_HINTS = ("not found", "does not appear to be a git repository", "does not exist",
                   "no such file or directory", "could not find remote branch")
AUTH_HINTS = ("authentication failed", "could not read username", "could not read password",
              "permission denied", "http 403", "error: 403", "access denied", "http 401")
REJECTED_HINTS = ("[rejected]", "[remote rejected]", "non-fast-forward", "hook declined",
                  "protected branch", "failed to push some refs")


@dataclass(frozen=True)
class Remote:
    """A clone URL split into where it points and the credentials it carried."""

    url: str
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str, username: str, token: str | None) -> Remote:
        """Credentials from the URL's user-info, else the configured token for http(s)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            return cls(url)
        if "@" in parts.netloc:
            userinfo, host = parts.netloc.rsplit("@", 1)
            user, _, password = userinfo.partition(":")
            return cls(urlunsplit(parts._replace(netloc=host)), unquote(user), unquote(password))
        return cls(url, username, token) if token else cls(url)

    def env(self) -> dict[str, str]:
        """Git configuration, through the environment, that authenticates to this remote."""
        if self.username is None and self.password is None:
            return {}
        pair = f"{self.username or ''}:{self.password or ''}".encode()
        header = "Authorization: Basic " + base64.b64encode(pair).decode()
        return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
                "GIT_CONFIG_VALUE_0": header}


@dataclass(frozen=True)
class Repo:
    """A cloned repository in a workspace."""

    path: Path
    remote: Remote
    branch: str | None
    base_sha: str | None
    config: bytes = b""  # .git/config as cloned, restored before rdev's own commit and push


class Git:
    """Runs git for one attempt: cancellable, bounded in time, redacted."""

    def __init__(self, ctx: TaskContext, redactor: Redactor) -> None:
        self.ctx = ctx
        self.redactor = redactor
        settings = ctx.settings
        self.base_env = {"GIT_TERMINAL_PROMPT": "0", "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
                         "LC_ALL": "C", "GIT_AUTHOR_NAME": settings.git_author_name,
                         "GIT_AUTHOR_EMAIL": settings.git_author_email,
                         "GIT_COMMITTER_NAME": settings.git_author_name,
                         "GIT_COMMITTER_EMAIL": settings.git_author_email}

    def run(self, args: list[str], cwd: Path, remote: Remote | None = None) -> commands.Completed:
        """`git args...` in `cwd` (no hooks), with the remote's credentials when given."""
        env = process.agent_env({**self.base_env, **(remote.env() if remote else {})})
        argv = ["git", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", *args]
        done = commands.run(self.ctx, argv, cwd=cwd, timeout_s=self.ctx.settings.git_timeout_s,
                            env=env)
        self.ctx.check()
        return done

    def output(self, args: list[str], cwd: Path) -> str | None:
        """The stripped output of a local git query, or None when it failed."""
        done = self.run(args, cwd)
        return done.output.strip() if done.ok else None

    def clone(self, spec: dict[str, Any], workspace: Path) -> Repo:
        """Clone the spec's repository (its branch, shallow when configured) into `workspace`."""
        settings = self.ctx.settings
        remote = Remote.parse(spec["git_clone_url"], settings.git_username, settings.git_token)
        args = ["clone", "--no-tags"]
        if settings.clone_depth > 0:
            args += ["--depth", str(settings.clone_depth)]
        if spec.get("branch"):
            args += ["--branch", spec["branch"]]
        path = workspace / "repo"
        done = self.run([*args, "--", remote.url, str(path)], workspace, remote)
        if not done.ok:
            raise self._failure("clone", done, NOT_FOUND_HINTS, ErrorCode.INVALID_SPEC)
        branch = self.output(["symbolic-ref", "--short", "-q", "HEAD"], path)
        config = (path / ".git" / "config").read_bytes()
        return Repo(path, remote, branch, self.output(["rev-parse", "HEAD"], path), config)

    def commit(self, repo: Repo, message: str) -> tuple[str, list[str]] | None:
        """Commit every change in the work tree; (head sha, files changed since the clone), or
        None when nothing changed. Commits the agent made itself count as changes too.

        The agent ran arbitrary tools in the work tree: the repository's config goes back to
        what the clone wrote, so no proxy, helper or filter it added runs with the credentials.
        """
        (repo.path / ".git" / "config").write_bytes(repo.config)
        self._checked(["add", "--all"], repo.path, "add")
        if self._names(["diff", "--cached", "--name-only", "-z"], repo.path):
            self._checked(["commit", "--no-verify", "--quiet", "-m", message], repo.path, "commit")
        head = self.output(["rev-parse", "HEAD"], repo.path)
        if head is None or head == repo.base_sha:
            return None
        since = [repo.base_sha, head] if repo.base_sha else ["--root", head]
        args = ["diff-tree", "-r", "--no-commit-id", "--name-only", "-z", *since]
        return head, self._names(args, repo.path)

    def _names(self, args: list[str], cwd: Path) -> list[str]:
        listed = self.output(args, cwd) or ""
        return sorted(name for name in listed.split("\0") if name)

    def push(self, repo: Repo, branch: str) -> str:
        """Push HEAD to `branch` of the remote; a rejection is a failure, never a silent success."""
        done = self.run(["push", "--porcelain", "--", repo.remote.url,
                         f"HEAD:refs/heads/{branch}"], repo.path, repo.remote)
        if not done.ok:
            raise self._failure("push", done, REJECTED_HINTS, ErrorCode.AGENT_ERROR,
                                what=f"push to {branch} was rejected")
        return self.redactor.text(done.output.strip())

    def _checked(self, args: list[str], cwd: Path, step: str) -> None:
        done = self.run(args, cwd)
        if not done.ok:
            raise self._failure(step, done, (), ErrorCode.AGENT_ERROR)

    def _failure(self, step: str, done: commands.Completed, hints: tuple[str, ...],
                 code: ErrorCode, what: str | None = None) -> errors.TaskFailure:
        output = self.redactor.text(done.output.strip())
        lowered = output.lower()
        if done.timed_out:
            code, what = ErrorCode.TIMEOUT, f"git {step} timed out"
        elif any(hint in lowered for hint in AUTH_HINTS):
            code, what = ErrorCode.AUTH_FAILED, f"git {step}: the remote refused the credentials"
        elif not any(hint in lowered for hint in hints):
            code, what = ErrorCode.AGENT_ERROR, None
        message = f"{what or f'git {step} failed'} (exit {done.exit_code}): {output[-1500:]}"
        return errors.TaskFailure(code, message, details={"step": step})

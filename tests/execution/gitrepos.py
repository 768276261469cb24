"""Local git repositories for the execution tests: bare remotes made from a dict of files."""

from __future__ import annotations

import subprocess
from pathlib import Path

AUTHOR = {"GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@localhost",
          "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@localhost"}


def git(*args: str, cwd: Path | None = None) -> str:
    """Run git and return its output; raises on failure."""
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", **AUTHOR})
    assert done.returncode == 0, done.stderr
    return done.stdout


def bare_repo(root: Path, name: str, files: dict[str, str], branch: str = "main") -> Path:
    """A bare repository `name.git` under `root` whose one commit holds `files`."""
    work = root / f"{name}-seed"
    work.mkdir(parents=True)
    git("init", "-q", "-b", branch, cwd=work)
    for path, content in files.items():
        target = work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "seed", cwd=work)
    bare = root / f"{name}.git"
    git("clone", "-q", "--bare", str(work), str(bare))
    return bare


def url(bare: Path) -> str:
    """The clone URL of a local bare repository."""
    return f"file://{bare}"


def show(bare: Path, ref: str, path: str) -> str:
    """A file's content at `ref` of a bare repository."""
    return git("--git-dir", str(bare), "show", f"{ref}:{path}")


def head(bare: Path, ref: str) -> str:
    """The sha `ref` points at."""
    return git("--git-dir", str(bare), "rev-parse", ref).strip()


def reject_pushes(bare: Path) -> None:
    """Make the remote refuse every push with a pre-receive hook."""
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected: pushes are not allowed' >&2\nexit 1\n")
    hook.chmod(0o755)

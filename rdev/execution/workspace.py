"""Per-attempt workspaces: a fresh directory for each attempt, removed when the attempt ends.

A workspace is `<root>/<task id>.<attempt>`. An attempt whose worker died leaves its directory
behind; `sweep()` removes every directory whose attempt is no longer running, and each worker
sweeps its root before it creates a new workspace (workspaces live on the worker's own disk).
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

#: (task id, attempt) -> True while that attempt is still the running one
IsLive = Callable[[uuid.UUID, int], bool]


def path_for(root: Path, task_id: uuid.UUID, attempt: int) -> Path:
    """Where the workspace of one attempt lives."""
    return root / f"{task_id}.{attempt}"


def parse_name(name: str) -> tuple[uuid.UUID, int] | None:
    """The (task id, attempt) a workspace directory name stands for, or None."""
    task, _, attempt = name.rpartition(".")
    try:
        return uuid.UUID(task), int(attempt)
    except ValueError:
        return None


@contextmanager
def attempt_workspace(root: Path, task_id: uuid.UUID, attempt: int) -> Iterator[Path]:
    """A fresh, empty directory for one attempt; removed (whatever happens) at the end."""
    path = path_for(root, task_id, attempt)
    remove(path)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        remove(path)


def remove(path: Path) -> None:
    """Delete a workspace tree, including read-only files git leaves behind."""
    if not path.exists():
        return
    for child in path.rglob("*"):
        if not child.is_symlink():
            child.chmod(0o700 if child.is_dir() else 0o600)
    shutil.rmtree(path, ignore_errors=True)


def sweep(root: Path, is_live: IsLive) -> list[Path]:
    """Remove the workspaces of attempts that are no longer running; returns what went."""
    if not root.is_dir():
        return []
    removed = []
    for entry in sorted(root.iterdir()):
        parsed = parse_name(entry.name)
        if parsed is None or not entry.is_dir() or is_live(*parsed):
            continue
        log.info("removing the workspace of a finished attempt: %s", entry)
        remove(entry)
        removed.append(entry)
    return removed

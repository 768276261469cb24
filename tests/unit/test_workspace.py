"""Per-attempt workspaces: created fresh, removed at the end, swept after crashes."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from rdev.execution import workspace


def test_workspace_is_removed_even_when_the_attempt_fails(tmp_path: Path) -> None:
    """The directory goes away on error, read-only files included."""
    task = uuid.uuid4()
    seen: list[Path] = []

    def attempt() -> None:
        with workspace.attempt_workspace(tmp_path, task, 2) as path:
            seen.append(path)
            (path / "ro").mkdir()
            (path / "ro" / "pack").write_text("x")
            (path / "ro" / "pack").chmod(0o444)
            (path / "ro").chmod(0o555)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        attempt()
    assert seen == [tmp_path / f"{task}.2"]
    assert not seen[0].exists()


def test_sweep_removes_only_dead_attempts(tmp_path: Path) -> None:
    """Directories of attempts that are not running go; live ones and strangers stay."""
    live, dead = uuid.uuid4(), uuid.uuid4()
    for name in (f"{live}.3", f"{dead}.1", f"{live}.2", "notes"):
        (tmp_path / name).mkdir()
    removed = workspace.sweep(tmp_path, lambda task, attempt: (task, attempt) == (live, 3))
    assert sorted(p.name for p in removed) == sorted([f"{dead}.1", f"{live}.2"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"{live}.3", "notes"])


def test_sweep_of_a_missing_root_is_empty(tmp_path: Path) -> None:
    """A worker that never ran a task has nothing to sweep."""
    assert workspace.sweep(tmp_path / "absent", lambda *_: False) == []

"""The sweep a worker runs when it starts: leftovers of finished attempts go, live ones stay."""

from __future__ import annotations

import uuid

import pytest
from flask.testing import FlaskClient

from rdev import lifecycle
from rdev.runtime import Runtime
from rdev.tasks import workspaces

pytestmark = pytest.mark.integration


def test_start_sweep_keeps_running_attempts_only(client: FlaskClient, runtime: Runtime) -> None:
    """A running attempt's workspace survives the sweep; a stranger's and an old one's do not."""
    task = client.post("/work/enqueue", json={"project_id": "p", "type": "probe",
                                              "spec": {}}).json
    assert task is not None
    with runtime.db.session() as session:
        claimed = lifecycle.claim(session, uuid.UUID(task["id"]), "w1")
    assert claimed is not None
    root = runtime.settings.workspaces
    live, old, gone = (root / f"{task['id']}.1", root / f"{task['id']}.0",
                       root / f"{uuid.uuid4()}.4")
    for path in (live, old, gone):
        (path / "repo").mkdir(parents=True)
    assert workspaces.sweep(runtime) == 2
    assert [p.name for p in root.iterdir()] == [live.name]

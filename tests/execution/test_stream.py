"""The live event stream: a late client gets the earlier events, then new ones as they happen."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.execution import gitrepos
from tests.execution.harness import Harness

pytestmark = pytest.mark.e2e


def frames(harness: Harness, task_id: str, **headers: str) -> Iterator[dict[str, Any]]:
    """Parsed SSE messages of the task's stream, as they arrive (`end` has kind 'end')."""
    response = harness.client.get(f"/work/{task_id}/events/stream", headers=headers,
                                  buffered=False)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    for chunk in response.response:
        text = chunk.decode() if isinstance(chunk, bytes) else chunk
        fields = dict(line.split(": ", 1) for line in text.strip().splitlines()
                      if ": " in line and not line.startswith(":"))
        if fields.get("event") == "end":
            yield {"kind": "end", **json.loads(fields["data"])}
            response.close()
            return
        if "data" in fields:
            yield {**json.loads(fields["data"]), "id": int(fields["id"]),
                   "received": time.time()}


def test_late_client_gets_earlier_then_live_events(harness: Harness, tmp_path: Path) -> None:
    """Connecting mid-run replays the log, then delivers new events within a second."""
    bare = gitrepos.bare_repo(tmp_path, "slow", {"slow.sh": "echo one\nsleep 2\necho two\n"})
    task = harness.enqueue("test", {"git_clone_url": gitrepos.url(bare),
                                    "command": ["sh", "slow.sh"]})
    harness.wait_event(task["id"], "command_started")
    earlier = len(harness.events(task["id"]))
    seen = list(frames(harness, task["id"]))
    kinds = [frame["kind"] for frame in seen]
    assert kinds[-1] == "end"
    assert [f["seq"] for f in seen[:-1]] == list(range(1, len(seen)))
    assert [f["id"] for f in seen[:-1]] == [f["seq"] for f in seen[:-1]]
    assert kinds.index("command_finished") >= earlier  # it came live, after the replay
    finished = seen[kinds.index("command_finished")]
    created = datetime.fromisoformat(finished["created_at"]).timestamp()
    assert finished["received"] - created < 1.0
    assert "two" in finished["data"]["output_tail"]
    progress = [f["data"]["text"] for f in seen if f["kind"] == "output"]
    assert progress[0].startswith("one")  # streamed while the command still ran


def test_stream_resumes_after_last_event_id(harness: Harness) -> None:
    """With Last-Event-ID the stream starts right after that event."""
    task = harness.enqueue("probe", {"emit": 5})
    harness.wait(task["id"], "completed")
    total = len(harness.events(task["id"]))
    seen = list(frames(harness, task["id"], **{"Last-Event-ID": "3"}))
    assert [f["seq"] for f in seen[:-1]] == list(range(4, total + 1))
    assert seen[-1] == {"kind": "end", "status": "completed", "last_seq": total}


def test_stream_of_unknown_task_is_404(harness: Harness) -> None:
    """A stream for a task that does not exist is a 404 error, not an empty stream."""
    response = harness.client.get("/work/00000000-0000-0000-0000-000000000000/events/stream")
    assert response.status_code == 404

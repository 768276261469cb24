"""1,000 concurrent enqueues through the real API (gunicorn), 10% replaying an Idempotency-Key."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from rdev.config import Settings
from rdev.db import queries
from rdev.runtime import Runtime
from tests.support.processes import BIN, Process, environment, free_port, wait_for

pytestmark = pytest.mark.e2e

REQUESTS = 1000
REPLAYS = 100
THREADS = 20


@pytest.fixture
def api(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """`rdev api` (gunicorn, two worker processes) on a free port; its base URL."""
    port = free_port()
    argv = [str(BIN / "rdev"), "api", "--host", "127.0.0.1", "--port", str(port),
            "--workers", "2"]
    process = Process(argv, environment(settings), tmp_path / "api.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(base) or not process.alive(), 30, "the API")
        assert process.alive(), process.output()
        yield base
    finally:
        process.stop()


def test_concurrent_enqueues_with_replays_create_exactly_the_unique_tasks(
    api: str, runtime: Runtime
) -> None:
    """Twenty threads, 1,000 requests, 100 replays: 900 tasks, one id per key, no 5xx."""
    rng = random.Random(7)
    keys = [f"key-{n}" for n in range(REQUESTS - REPLAYS)]
    plan = keys + [rng.choice(keys) for _ in range(REPLAYS)]
    rng.shuffle(plan)
    with httpx.Client(base_url=api, timeout=30,
                      limits=httpx.Limits(max_connections=THREADS)) as http:
        def send(key: str) -> tuple[str, int, str]:
            body = {"project_id": "load", "type": "probe", "spec": {"sleep_s": 0.0}}
            reply = http.post("/work/enqueue", json=body, headers={"Idempotency-Key": key})
            return key, reply.status_code, reply.json().get("id", "")

        with ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(send, plan))
    statuses = Counter(status for _, status, _ in results)
    assert statuses == {201: REQUESTS - REPLAYS, 200: REPLAYS}
    ids_by_key: dict[str, set[str]] = defaultdict(set)
    for key, _, task_id in results:
        ids_by_key[key].add(task_id)
    assert all(len(ids) == 1 for ids in ids_by_key.values())
    with runtime.db.session() as session:
        stored = sum(n for _, _, n in queries.count_by_status_and_type(session))
    assert stored == REQUESTS - REPLAYS
    # Every gunicorn process answers a scrape with the same figures: they come from PostgreSQL.
    pending = f'rdev_tasks{{status="pending",type="probe"}} {REQUESTS - REPLAYS}.0'
    assert all(pending in httpx.get(f"{api}/metrics").text for _ in range(6))


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False

"""Benchmarks of rdev against bare Celery on this machine, printed as one table.

    .venv/bin/python -m bench.throughput [--tasks 2000] [--samples 200] [--requests 2000]

1. Throughput: N no-op tasks pre-queued, then one worker (prefork, -c 2) drains them; rate from
   the first finished task to the last. rdev's tasks go through claim, heartbeat thread, complete
   and the event log; bare Celery's through the same broker and delivery settings.
2. Dispatch latency: an idle worker; time from the enqueue response (rdev: HTTP via `rdev api`;
   bare: `delay()` returning) to the handler starting.
3. Enqueue rate over HTTP to `rdev api` (2 gunicorn workers): wrk with 16 connections when
   installed (`apt-get install wrk`), else 20 httpx threads (a lower bound: they share the CPU).
Uses the machine's PostgreSQL (database rdev_bench, recreated) and Redis database 10 (flushed).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import redis
from sqlalchemy import func, select

from bench import bare_celery
from rdev import dispatch, lifecycle
from rdev.config import Settings
from rdev.db import migrate
from rdev.db.models import Task
from rdev.tasks.celery_app import make_celery
from tests.support import services
from tests.support.processes import BIN, Process, environment, free_port, start_worker, wait_for

BROKER_DB = 10
LOGS = Path("/tmp/rdev-bench")


def main() -> None:
    args = _arguments()
    LOGS.mkdir(exist_ok=True)
    settings = _fresh_settings()
    rows = [
        ("throughput, bare Celery (tasks/s)", bare_throughput(settings, args.tasks)),
        ("throughput, rdev (tasks/s)", rdev_throughput(settings, args.tasks)),
    ]
    rows.append(("rdev / bare throughput", rows[1][1] / rows[0][1]))
    bare_p50, bare_p99 = bare_latency(settings, args.samples)
    rdev_p50, rdev_p99, enqueue_rate = rdev_http(settings, args.samples, args.requests)
    rows += [
        ("dispatch latency p50, bare Celery (ms)", bare_p50),
        ("dispatch latency p99, bare Celery (ms)", bare_p99),
        ("dispatch latency p50, rdev (ms)", rdev_p50),
        ("dispatch latency p99, rdev (ms)", rdev_p99),
        (f"enqueue over HTTP, {'wrk' if shutil.which('wrk') else 'httpx'} (requests/s)",
         enqueue_rate),
    ]
    for name, value in rows:
        print(f"{name:<42} {value:10.2f}")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--requests", type=int, default=2000)
    return parser.parse_args()


def _fresh_settings() -> Settings:
    services.drop_database("rdev_bench")
    url = services.create_database("rdev_bench")
    migrate.upgrade(url)
    services.flush_redis(BROKER_DB)
    return Settings(database_url=url, broker_url=services.redis_url(BROKER_DB),
                    queue="rdev_bench", handler_modules="bench.noop")


def _rate(count: Callable[[], int], total: int) -> float:
    wait_for(lambda: count() >= 1, 120, "the first task", every=0.01)
    start = time.monotonic()
    wait_for(lambda: count() >= total, 600, "every task", every=0.02)
    return (total - 1) / (time.monotonic() - start)


def bare_throughput(settings: Settings, total: int) -> float:
    client = redis.Redis.from_url(settings.broker_url)
    for _ in range(total):
        bare_celery.noop.apply_async(queue=bare_celery.QUEUE)
    worker = _bare_worker(settings)
    try:
        return _rate(lambda: int(client.get("bench:bare:done") or 0), total)
    finally:
        worker.stop()


def rdev_throughput(settings: Settings, total: int) -> float:
    runtime = make_celery(settings).rdev
    new = lifecycle.NewTask(project_id="bench", type="noop", spec={}, priority=5,
                            max_retries=0, timeout_s=60)
    with runtime.db.session() as session:
        tasks = [lifecycle.enqueue(session, new)[0] for _ in range(total)]
    for task in tasks:
        dispatch.publish(runtime, task)

    def completed() -> int:
        with runtime.db.session() as session:
            query = select(func.count()).select_from(Task).where(Task.status == "completed")
            return int(session.execute(query).scalar_one())

    worker = start_worker(settings, LOGS, "bench", concurrency=2)
    try:
        return _rate(completed, total)
    finally:
        worker.stop()


def bare_latency(settings: Settings, samples: int) -> tuple[float, float]:
    client = redis.Redis.from_url(settings.broker_url)
    worker = _bare_worker(settings)
    try:
        waits = []
        for _ in range(samples):
            client.delete("bench:starts")
            bare_celery.noop.apply_async(kwargs={"mark": True}, queue=bare_celery.QUEUE)
            sent = time.time()
            waits.append(_started(client) - sent)
    finally:
        worker.stop()
    return _percentiles(waits)


def rdev_http(settings: Settings, samples: int, requests: int) -> tuple[float, float, float]:
    client = redis.Redis.from_url(settings.broker_url)
    port = free_port()
    api = Process([str(BIN / "rdev"), "api", "--port", str(port)], environment(settings),
                  LOGS / "api.log")
    url = f"http://127.0.0.1:{port}"
    worker = start_worker(settings, LOGS, "latency", concurrency=2)
    try:
        wait_for(lambda: _ready(url), 30, "the API", every=0.2)
        waits = []
        with httpx.Client(base_url=url) as http:
            for _ in range(samples):
                client.delete("bench:starts")
                http.post("/work/enqueue", json={
                    "project_id": "bench", "type": "noop", "spec": {"mark": True}})
                answered = time.time()
                waits.append(_started(client) - answered)
        worker.stop()
        rate = _enqueue_rate(url, requests)
    finally:
        worker.stop()
        api.stop()
    return (*_percentiles(waits), rate)


def _enqueue_rate(url: str, requests: int, threads: int = 20) -> float:
    """Requests/s of POST /work/enqueue; wrk (a C client) when installed, else httpx threads.

    A Python client on this 2-core machine takes CPU from the server it measures, so the httpx
    figure is a lower bound; `apt-get install wrk` gives the server's own rate.
    """
    if shutil.which("wrk"):
        return _wrk_rate(url, seconds=max(3, requests // 500))
    return _httpx_rate(url, requests, threads)


def _wrk_rate(url: str, seconds: int) -> float:
    script = LOGS / "enqueue.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        'wrk.body = \'{"project_id": "bench-http", "type": "noop", "spec": {}}\'\n'
    )
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "-s", str(script), f"{url}/work/enqueue"],
        capture_output=True, text=True, check=True,
    ).stdout
    if "Non-2xx" in out:
        sys.exit(f"enqueue answered errors under load:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def _httpx_rate(url: str, requests: int, threads: int) -> float:
    def post_many(count: int) -> None:
        with httpx.Client(base_url=url) as http:
            for _ in range(count):
                response = http.post("/work/enqueue", json={
                    "project_id": "bench-http", "type": "noop", "spec": {}})
                response.raise_for_status()

    start = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(post_many, [requests // threads] * threads))
    return (requests // threads * threads) / (time.monotonic() - start)


def _bare_worker(settings: Settings) -> Process:
    argv = [str(BIN / "celery"), "-A", "bench.bare_celery", "worker", "--concurrency=2",
            "--loglevel=INFO", "-n", "bare@%h", "--without-mingle", "--without-gossip"]
    worker = Process(argv, environment(settings), LOGS / "bare.log")
    wait_for(lambda: "ready" in worker.output() or not worker.alive(), 30, "bare worker")
    return worker


def _started(client: redis.Redis) -> float:
    popped = client.blpop(["bench:starts"], timeout=10)
    if popped is None:
        sys.exit("a benchmark task never started")
    return float(popped[1].split()[-1])


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(seconds, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


if __name__ == "__main__":
    main()

"""A bare Celery app with rdev's delivery settings and a no-op task: the baseline."""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

BROKER = os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/10")
QUEUE = "bare"

app = Celery("bare", broker=BROKER)
app.conf.update(
    task_default_queue=QUEUE, task_acks_late=True, task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1, task_ignore_result=True, task_serializer="json",
    accept_content=["json"], worker_hijack_root_logger=False,
    broker_transport_options={"priority_steps": list(range(10)), "sep": ":",
                              "queue_order_strategy": "priority"},
)
_client = redis.Redis.from_url(BROKER)


@app.task(name="bare.noop", ignore_result=True)
def noop(mark: bool = False) -> None:
    if mark:
        _client.rpush("bench:starts", f"bare {time.time()}")
    _client.incr("bench:bare:done")

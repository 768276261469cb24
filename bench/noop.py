"""A `noop` task type for benchmarks: its handler records when it started and returns."""

from __future__ import annotations

import time
from typing import Any

import redis
from pydantic import BaseModel, ConfigDict

from rdev import handlers
from rdev.context import TaskContext

STARTS_KEY = "bench:starts"


class NoopSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mark: bool = False


_redis: dict[str, redis.Redis] = {}


def run_noop(ctx: TaskContext) -> dict[str, Any]:
    if ctx.spec.get("mark"):
        client = _redis.setdefault("c", redis.Redis.from_url(ctx.settings.broker_url))
        client.rpush(STARTS_KEY, f"{ctx.task_id} {time.time()}")
    return {}


handlers.register("noop", NoopSpec, run_noop)

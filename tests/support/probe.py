"""A `probe` task type for tests: sleeps, fails on demand, and records each attempt to a file.

Workers load it through RDEV_HANDLER_MODULES=tests.support.probe. Each attempt appends a JSON
line {task, attempt, pid, start, end} to `record`, so a test can prove that no two attempts of
one task overlapped and that each task ended exactly once.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rdev import errors, handlers
from rdev.codes import ErrorCode
from rdev.context import TaskContext


class ProbeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sleep_s: float = Field(0.0, ge=0)
    cooperative: bool = True
    fail_code: ErrorCode | None = None
    fail_times: int = 1_000_000
    retry_after_s: float | None = None
    record: str | None = None
    emit: int = Field(0, ge=0)
    agent: str | None = None  # makes probe an agent type: provider pauses apply to it


def _append(path: str, entry: dict[str, Any]) -> None:
    with open(path, "a") as out:
        fcntl.flock(out, fcntl.LOCK_EX)
        out.write(json.dumps(entry) + "\n")


def run_probe(ctx: TaskContext) -> dict[str, Any]:
    spec = ProbeSpec.model_validate(ctx.spec)
    entry = {"task": str(ctx.task_id), "attempt": ctx.attempt, "pid": os.getpid(),
             "worker": ctx.worker_id, "start": time.time()}
    if spec.record:
        _append(spec.record, {**entry, "phase": "start"})
    for number in range(spec.emit):
        ctx.emit("probe", {"n": number})
    if spec.cooperative:
        if ctx.wait(spec.sleep_s):
            ctx.check()
    else:
        time.sleep(spec.sleep_s)
    if spec.fail_code is not None and ctx.attempt <= spec.fail_times:
        raise errors.TaskFailure(spec.fail_code, f"probe failed on attempt {ctx.attempt}",
                                 spec.retry_after_s)
    if spec.record:
        _append(spec.record, {**entry, "phase": "end", "end": time.time()})
    return {"attempt": ctx.attempt, "pid": os.getpid()}


handlers.register("probe", ProbeSpec, run_probe)
#: a probe whose lost attempts must not run again, as deploy declares
handlers.register("probe_side_effects", ProbeSpec, run_probe, side_effects=True)


def read_records(path: str) -> list[dict[str, Any]]:
    """The entries a probe wrote, in order."""
    if not os.path.exists(path):
        return []
    with open(path) as records:
        return [json.loads(line) for line in records if line.strip()]

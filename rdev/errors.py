"""rdev's exception tree.

    RdevError
      ConfigError                 a RDEV_* variable is missing or malformed
      InvalidRequest              a request cannot be accepted (the field at fault is named)
        InvalidSpec               a task spec cannot run: the INVALID_SPEC error code
      TaskError
        TaskNotFound
        WorkerNotFound
        InvalidTransition         the task is not in a status that allows the action (409)
        IdempotencyConflict       an Idempotency-Key replayed with a different request (422)
      StaleAttempt                a write from an attempt that is no longer current (fenced)
      TaskFailure                 a handler's failure with an error code; ends the attempt
      ServiceUnavailable          PostgreSQL or the broker cannot be reached (503)

Every class passes all constructor arguments to `Exception.__init__` positionally, so instances
survive pickling across the Celery boundary (celery/celery#6990).
"""

from __future__ import annotations

from typing import Any

from rdev.codes import ErrorCode


class RdevError(Exception):
    """Base class of every error rdev raises on purpose."""


class ConfigError(RdevError):
    """A configuration variable is missing or malformed."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(variable, problem)
        self.variable = variable
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.variable}: {self.problem}"


class InvalidRequest(RdevError):
    """A request cannot be accepted; `field` names the part at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message, field)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class InvalidSpec(InvalidRequest):
    """A task spec that cannot run (bad fields, unknown type, repo not cloneable)."""


class TaskError(RdevError):
    """A task-level request that cannot be carried out."""


class TaskNotFound(TaskError):
    """No task has this id."""

    def __init__(self, task_id: str) -> None:
        super().__init__(task_id)
        self.task_id = task_id

    def __str__(self) -> str:
        return f"task {self.task_id} not found"


class WorkerNotFound(TaskError):
    """No worker has this id."""

    def __init__(self, worker_id: str) -> None:
        super().__init__(worker_id)
        self.worker_id = worker_id

    def __str__(self) -> str:
        return f"worker {self.worker_id} not found"


class InvalidTransition(TaskError):
    """The task's status does not allow the requested action."""

    def __init__(self, task_id: str, status: str, action: str) -> None:
        super().__init__(task_id, status, action)
        self.task_id = task_id
        self.status = status
        self.action = action

    def __str__(self) -> str:
        return f"cannot {self.action} task {self.task_id}: it is {self.status}"


class IdempotencyConflict(TaskError):
    """An Idempotency-Key was replayed with a request different from the first."""

    def __init__(self, key: str, task_id: str) -> None:
        super().__init__(key, task_id)
        self.key = key
        self.task_id = task_id

    def __str__(self) -> str:
        return (
            f"Idempotency-Key {self.key!r} was first used for task {self.task_id} "
            "with a different request"
        )


class StaleAttempt(RdevError):
    """A write from an attempt that is no longer the task's current one was refused."""

    def __init__(self, task_id: str, attempt: int) -> None:
        super().__init__(task_id, attempt)
        self.task_id = task_id
        self.attempt = attempt

    def __str__(self) -> str:
        return f"attempt {self.attempt} of task {self.task_id} is no longer current"


class TaskFailure(RdevError):
    """Ends an attempt with an error code; raised by handlers and agent adapters."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        retry_after_s: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(code, message, retry_after_s, details)
        self.code = ErrorCode(code)
        self.message = message
        self.retry_after_s = retry_after_s
        self.details = details or {}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ServiceUnavailable(RdevError):
    """PostgreSQL or the broker cannot be reached right now."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(service, reason)
        self.service = service
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.service} unavailable: {self.reason}"

"""Configuration: every RDEV_* environment variable, read in this one place into a typed object.

`Settings.from_env()` is the only reader of the process environment in rdev. Each field is the
lower-cased variable name without its prefix (`RDEV_HEARTBEAT_S` -> `heartbeat_s`). Defaults run
on one machine: PostgreSQL and Redis on localhost, one worker, fifteen-second heartbeats.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from rdev.errors import ConfigError

PREFIX = "RDEV_"

log = logging.getLogger(__name__)


class Settings(BaseModel):
    """rdev's configuration; immutable once read."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Services
    database_url: str = "postgresql+psycopg2://postgres@127.0.0.1:5432/rdev"
    broker_url: str = "redis://127.0.0.1:6379/0"
    queue: str = "rdev"
    data_dir: Path = Path(".rdev")

    # Life cycle
    heartbeat_s: float = Field(15.0, gt=0)
    stale_after_s: float = Field(90.0, gt=0)
    redispatch_after_s: float = Field(300.0, gt=0)
    retention_days: float = Field(7.0, gt=0)
    cleanup_batch_size: int = Field(500, ge=1)
    task_timeout_s: int = Field(900, ge=1)
    max_task_timeout_s: int = Field(4 * 3600, ge=1)
    max_retries: int = Field(3, ge=0, le=20)
    retry_backoff_s: float = Field(30.0, ge=0)
    rate_limit_backoff_s: float = Field(60.0, ge=0)
    max_backoff_s: float = Field(3600.0, ge=0)
    max_eta_s: float = Field(60.0, ge=0)
    max_prompt_bytes: int = Field(200_000, ge=1)
    max_spec_bytes: int = Field(512_000, ge=1)
    handler_modules: str = ""

    # Maintenance cadence (beat)
    rescue_interval_s: float = Field(15.0, gt=0)
    redispatch_interval_s: float = Field(10.0, gt=0)
    cleanup_interval_s: float = Field(3600.0, gt=0)

    # Broker delivery
    visibility_timeout_s: int | None = Field(None, ge=1)
    publish_timeout_s: float = Field(2.0, gt=0)

    # API
    api_host: str = "127.0.0.1"
    api_port: int = Field(8080, ge=0, le=65535)
    api_workers: int = Field(2, ge=1)
    flower_port: int = Field(5555, ge=0, le=65535)

    # Agents
    agent: str | None = None
    claude_bin: str = "claude"
    opencode_bin: str = "opencode"
    opencode_url: str | None = None
    opencode_password: str | None = None
    claudebox_url: str | None = None
    agent_idle_timeout_s: float = Field(300.0, gt=0)
    agent_permission_mode: str = "acceptEdits"
    agent_stop_grace_s: float = Field(5.0, ge=0)  # each wait of the stop ladder (stdin, SIGTERM)
    agent_result_grace_s: float = Field(2.0, ge=0)  # how long an agent may linger after its result
    # provider retries an agent may absorb before the run stops and the queue backs off
    agent_api_retry_budget: int = Field(2, ge=0)

    # Execution
    workspace_root: Path | None = None  # per-attempt workspaces; default data_dir/workspaces
    git_author_name: str = "rdev"
    git_author_email: str = "rdev@localhost"
    git_username: str = "x-access-token"  # sent with git_token to http(s) remotes
    git_token: str | None = None
    git_timeout_s: float = Field(600.0, gt=0)
    clone_depth: int = Field(1, ge=0)  # 0 clones the full history
    sdlc_bin: str = "sdlc"
    kubectl_bin: str = "kubectl"
    kubectl_context: str | None = None
    kubectl_namespace: str | None = None
    rollout_timeout_s: float = Field(300.0, gt=0)
    output_tail_chars: int = Field(4000, ge=200)
    callback_secret: str | None = None
    callback_timeout_s: float = Field(10.0, gt=0)
    callback_max_attempts: int = Field(5, ge=1, le=50)
    callback_backoff_s: float = Field(10.0, ge=0)
    callback_interval_s: float = Field(10.0, gt=0)  # beat's pass over undelivered callbacks
    sse_poll_s: float = Field(0.2, gt=0)
    sse_keepalive_s: float = Field(15.0, gt=0)
    sse_max_s: float = Field(3600.0, gt=0)  # a stream ends after this; clients resume by id

    @property
    def workspaces(self) -> Path:
        """The directory under which each attempt gets its workspace."""
        return self.workspace_root or self.data_dir / "workspaces"

    # Fleet
    worker_refresh_s: float = Field(15.0, gt=0)  # how often a worker refreshes its registry row
    worker_offline_after_s: float = Field(90.0, gt=0)  # no refresh for this long: offline
    worker_offline_interval_s: float = Field(30.0, gt=0)  # beat's cadence for marking offline
    shutdown_grace_s: float = Field(30.0, ge=0)  # warm shutdown: running tasks may finish this long
    project_concurrency: str = "build=1,sdlc=1,deploy=1"  # type=N: running per project and type
    lane_concurrency: str = ""  # type=N: running per type across the fleet (the API overrides)
    provider_pause_max_s: float = Field(3600.0, gt=0)  # longest pause a reset time may impose

    @field_validator("project_concurrency", "lane_concurrency")
    @classmethod
    def _limits_parse(cls, value: str) -> str:
        parse_limits(value)
        return value

    @model_validator(mode="after")
    def _timeouts_fit(self) -> Settings:
        if self.task_timeout_s > self.max_task_timeout_s:
            raise ValueError("task_timeout_s must not exceed max_task_timeout_s")
        if self.visibility_timeout_s is not None and (
            self.visibility_timeout_s <= self.max_task_timeout_s
        ):
            raise ValueError("visibility_timeout_s must exceed max_task_timeout_s")
        return self

    @property
    def broker_visibility_timeout_s(self) -> int:
        """Far above the longest task, so Redis never redelivers a task that is still running."""
        return self.visibility_timeout_s or self.max_task_timeout_s + 3600

    @property
    def handler_module_names(self) -> list[str]:
        """Modules imported at start to register extra task handlers (comma-separated)."""
        return [name.strip() for name in self.handler_modules.split(",") if name.strip()]

    @property
    def project_limits(self) -> dict[str, int]:
        """Default running tasks allowed per project, by task type (absent: unlimited)."""
        return parse_limits(self.project_concurrency)

    @property
    def lane_limits(self) -> dict[str, int]:
        """Default running tasks allowed across the fleet, by task type (absent: unlimited)."""
        return parse_limits(self.lane_concurrency)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read RDEV_* variables (from `environ`, or the process environment)."""
        source = os.environ if environ is None else environ
        values: dict[str, Any] = {
            key[len(PREFIX) :].lower(): value
            for key, value in source.items()
            if key.startswith(PREFIX) and value != ""
        }
        unknown = sorted(set(values) - set(cls.model_fields))
        for name in unknown:
            # Not an error: other tools share the prefix (CI scripts, test helpers).
            log.warning("ignoring %s%s: rdev has no such setting", PREFIX, name.upper())
            values.pop(name)
        try:
            return cls(**values)
        except ValidationError as exc:
            raise _config_error(exc) from None

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some fields changed, validated like the original."""
        try:
            return type(self)(**{**self.model_dump(), **changes})
        except ValidationError as exc:
            raise _config_error(exc) from None

    def environ(self) -> dict[str, str]:
        """These settings as RDEV_* variables, for child processes."""
        return {
            PREFIX + name.upper(): str(value)
            for name, value in self.model_dump().items()
            if value is not None
        }


def parse_limits(value: str) -> dict[str, int]:
    """`build=1,deploy=1` as {"build": 1, "deploy": 1}; ValueError when malformed."""
    limits: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, sep, number = item.partition("=")
        if not sep or not name.strip() or not number.strip().isdigit():
            raise ValueError(f"expected type=N, got {item!r}")
        limits[name.strip()] = int(number)
    return limits


def _config_error(exc: ValidationError) -> ConfigError:
    first = exc.errors()[0]
    name = str(first["loc"][0]).upper() if first["loc"] else "SETTINGS"
    return ConfigError(PREFIX + name, first["msg"])

"""One worker for the whole execution tier: settings, stand-in CLIs, the mock API, the client.

Starting `celery -A rdev worker` costs seconds, so this package shares one (concurrency 4)
with its own database, Redis database and queue; every test uses its own project id, repos and
tasks, so tests never see each other's work. The worker's agents talk to the mock Messages
API of tests/agents through ANTHROPIC_BASE_URL (Claude Code) and a global opencode.json.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy.exc
from flask.testing import FlaskClient

from rdev.config import Settings
from rdev.web.app import create_app
from tests.agents.mock_anthropic import MockAnthropic
from tests.support import services
from tests.support.fixtures import FAST
from tests.support.processes import Process, start_worker, wait_for

__all__ = ["Harness", "harness"]

REDIS_DB = 11  # the integration tiers use 14 and 13
NODE_BIN = Path(__file__).resolve().parents[2] / "node_modules" / ".bin"
CALLBACK_SECRET = "callback-test-secret"

SDLC = """#!/usr/bin/env python3
import pathlib, subprocess, sys
command, args = sys.argv[1], sys.argv[2:]
print(f"sdlc {command} {' '.join(args)}", flush=True)
if command == "fail":
    print("sdlc: the plan is invalid", file=sys.stderr)
    sys.exit(3)
pathlib.Path(f"sdlc-{command}.txt").write_text("\\n".join(args) + "\\n")
if command == "selfcommit":
    subprocess.run(["git", "add", "-A"], check=True)
    subprocess.run(["git", "-c", "user.name=cli", "-c", "user.email=cli@x", "commit", "-qm",
                    "made by the cli"], check=True)
if command == "gpgsign":
    subprocess.run(["git", "config", "commit.gpgsign", "true"], check=True)
"""

KUBECTL = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ.get("KUBECTL_RECORD", "%s"), "a") as record:
    record.write(json.dumps(sys.argv[1:]) + "\\n")
target = next((a for a in sys.argv if a.startswith("deployment/")), "deployment/?")
if target == "deployment/missing":
    print('Error from server (NotFound): deployments.apps "missing" not found', file=sys.stderr)
    sys.exit(1)
if "rollout" in sys.argv:
    print(f'deployment "{target[11:]}" successfully rolled out')
else:
    print(f"{target.replace('deployment/', 'deployment.apps/')} image updated")
"""


@dataclass
class Harness:
    """The shared worker and API client, with helpers to enqueue and watch tasks."""

    settings: Settings
    client: FlaskClient
    root: Path
    worker: Process
    mock: MockAnthropic

    @property
    def kubectl_record(self) -> Path:
        return self.root / "kubectl.jsonl"

    def enqueue(self, type_: str, spec: dict[str, Any], **fields: Any) -> dict[str, Any]:
        """Enqueue a task for a fresh project; the created task."""
        body = {"project_id": f"p-{uuid.uuid4().hex[:8]}", "type": type_, "spec": spec,
                **fields}
        response = self.client.post("/work/enqueue", json=body)
        assert response.status_code == 201, response.json
        return response.json  # type: ignore[return-value]

    def task(self, task_id: str) -> dict[str, Any]:
        return self.client.get(f"/work/{task_id}").json  # type: ignore[return-value]

    def wait(self, task_id: str, *statuses: str, timeout: float = 60) -> dict[str, Any]:
        """Poll until the task is in one of `statuses`."""
        def reached() -> dict[str, Any] | None:
            task = self.task(task_id)
            return task if task["status"] in statuses else None

        try:
            return wait_for(reached, timeout, f"task {task_id} to reach {statuses}", every=0.1)
        except AssertionError:
            print(self.worker.output()[-6000:])
            raise

    def events(self, task_id: str) -> list[dict[str, Any]]:
        """The task's whole event log."""
        return self.client.get(f"/work/{task_id}/events").json["events"]  # type: ignore[index]

    def kinds(self, task_id: str) -> list[str]:
        return [event["kind"] for event in self.events(task_id)]

    def wait_event(self, task_id: str, kind: str, timeout: float = 30) -> None:
        wait_for(lambda: kind in self.kinds(task_id), timeout, f"event {kind}", every=0.1)

    def workspaces(self) -> list[Path]:
        root = self.settings.workspaces
        return sorted(root.iterdir()) if root.exists() else []


def _script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def _settings(root: Path, database_url: str) -> Settings:
    bin_dir = root / "bin"
    bin_dir.mkdir()
    overrides = {
        **FAST,
        "queue": f"rdev-exec-{uuid.uuid4().hex[:8]}",
        "data_dir": root / "data",
        "workspace_root": root / "workspaces",
        "sdlc_bin": _script(bin_dir / "sdlc", SDLC),
        "kubectl_bin": _script(bin_dir / "kubectl", KUBECTL % (root / "kubectl.jsonl")),
        "kubectl_context": "test-context",
        "kubectl_namespace": "apps",
        "claude_bin": str(NODE_BIN / "claude"),
        "opencode_bin": str(NODE_BIN / "opencode"),
        "agent_stop_grace_s": 1.0,
        "agent_result_grace_s": 1.0,
        "agent_api_retry_budget": 0,
        "callback_secret": CALLBACK_SECRET,
        "callback_max_attempts": 3,
        "callback_backoff_s": 0.3,
        "callback_timeout_s": 2.0,
        "callback_interval_s": 2.0,
    }
    return Settings(database_url=database_url, broker_url=services.redis_url(REDIS_DB),
                    **overrides)


def _agent_home(root: Path, mock_url: str) -> Path:
    home = root / "home"
    config = home / ".config" / "opencode"
    config.mkdir(parents=True)
    (config / "opencode.json").write_text(json.dumps({
        "model": "anthropic/claude-sonnet-4-5",
        "provider": {"anthropic": {"options": {"baseURL": mock_url + "/v1", "apiKey": "any"}}},
        "autoupdate": False, "share": "disabled",
    }))
    return home


@pytest.fixture(scope="package")
def harness(template_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
    Harness
]:
    """The execution tier's worker, mock API and API client."""
    root = tmp_path_factory.mktemp("execution")
    name = services.unique_name("rdev_exec")
    try:
        database_url = services.create_database(name, template=template_database)
        redis.Redis.from_url(services.redis_url(REDIS_DB)).flushdb()
    except (sqlalchemy.exc.OperationalError, redis.RedisError) as exc:
        services.require("PostgreSQL and Redis", exc)
    settings = _settings(root, database_url)
    with MockAnthropic() as mock:
        env = {"HOME": str(_agent_home(root, mock.url)), "ANTHROPIC_BASE_URL": mock.url,
               "ANTHROPIC_API_KEY": "test-key", "DISABLE_AUTOUPDATER": "1",
               "KUBECTL_RECORD": str(root / "kubectl.jsonl")}
        worker = start_worker(settings, root, "exec", concurrency=4, **env)
        app = create_app(settings)
        try:
            yield Harness(settings, app.test_client(), root, worker, mock)
        finally:
            worker.stop()
            app.extensions["rdev"].db.dispose()
            app.extensions["rdev"].celery.close()
            services.drop_database(name)


def require_binary(name: str) -> str:
    """An npm agent binary's path; fails in CI and skips elsewhere when it is missing."""
    path = NODE_BIN / name
    if path.exists():
        return str(path)
    message = f"{path} is not installed (run .ci/setup.d/20-agents.sh)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
    raise AssertionError("unreachable")

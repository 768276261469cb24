"""The containers' command lines, run as local processes against the machine's PostgreSQL and Redis.

The commands come from docker-compose.yml (and the worker's drain from the rendered chart), with
only what a container would not share with this machine changed: listening ports become free
ones, files under /tmp or /var/lib go to the test's directory, and the database and broker URLs
point at a fresh database and Redis database 13.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.manifests import ALL_ON, HELM_PYTHON, compose, expand, one, render
from tests.support.processes import BIN, Process, free_port, wait_for
from tests.support.services import (
    create_database,
    drop_database,
    flush_redis,
    redis_url,
    require,
    unique_name,
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(240)]

REDIS_DB = 13
NODE = f"celery@{socket.gethostname()}"


def _localize(argv: list[str], scratch: Path) -> tuple[list[str], int | None]:
    """argv with a free listening port and scratch paths; the port, if the command listens."""
    port = None
    result = []
    words = iter(argv)
    for word in words:
        if word == "--port":
            port = free_port()
            next(words, None)  # the port the container listens on
            result += [word, str(port)]
            continue
        if word.startswith("--port="):
            port = free_port()
            result.append(f"--port={port}")
            continue
        match = re.match(r"^(--[\w-]+=)(/(?:tmp|var/lib)/\S+)$", word)
        if match:
            result.append(f"{match.group(1)}{scratch / Path(match.group(2)).name}")
            continue
        result.append(word)
    return [str(BIN / result[0]), *result[1:]], port


def _http(url: str, auth: str | None = None, body: dict[str, Any] | None = None
          ) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


@dataclass
class Stack:
    """The processes of the compose stack, started locally."""

    database_url: str
    scratch: Path
    services: dict[str, Any]
    processes: dict[str, Process] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def argv(self, service: str) -> tuple[list[str], int | None]:
        command = [expand(word) for word in self.services[service]["command"]]
        return _localize(command, self.scratch)

    def env(self, service: str) -> dict[str, str]:
        """The service's compose environment, with this machine's database and broker."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RDEV_", "FLOWER_"))}
        for name, value in self.services[service].get("environment", {}).items():
            if expand(value):
                env[name] = expand(value)
        if "RDEV_DATABASE_URL" in env:
            env["RDEV_DATABASE_URL"] = self.database_url
        env.update(
            RDEV_BROKER_URL=redis_url(REDIS_DB),
            RDEV_DATA_DIR=str(self.scratch / "data"),
            # Beat's quickest job, sooner than its production cadence, so the test sees it run.
            RDEV_REDISPATCH_INTERVAL_S="1",
            PATH=os.pathsep.join([str(BIN), env.get("PATH", "")]),
            HOSTNAME=socket.gethostname(),
            PYTHONUNBUFFERED="1",
        )
        return env

    def start(self, service: str) -> Process:
        argv, port = self.argv(service)
        process = Process(argv, self.env(service), self.scratch / f"{service}.log")
        self.processes[service] = process
        if port:
            self.ports[service] = port
        return process

    def run(self, service: str, argv: list[str], timeout: float = 60
            ) -> subprocess.CompletedProcess[str]:
        """A command in the service's environment, as a probe or hook in its container runs."""
        return subprocess.run(
            argv, env=self.env(service), capture_output=True, text=True, timeout=timeout,
            check=False,
        )

    def healthcheck(self, *flags: str) -> subprocess.CompletedProcess[str]:
        return self.run("worker", [str(BIN / "rdev"), "healthcheck", *flags], timeout=30)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A fresh database and Redis DB 13, and the stack's processes, stopped by PID afterwards."""
    name = unique_name("rdev_deploy")
    try:
        database_url = create_database(name)
    except Exception as exc:  # any connection failure means "no PostgreSQL"
        require("PostgreSQL", exc)
    try:
        flush_redis(REDIS_DB)
    except Exception as exc:
        drop_database(name)
        require("Redis", exc)
    built = Stack(database_url, tmp_path_factory.mktemp("deploy"), compose()["services"])
    try:
        yield built
    finally:
        for process in reversed(built.processes.values()):
            process.stop(timeout=20)
        drop_database(name)
        flush_redis(REDIS_DB)


def _log(stack: Stack) -> str:
    return "\n".join(
        f"--- {name} ---\n{process.output()[-3000:]}" for name, process in stack.processes.items()
    )


def test_compose_commands_run_the_stack(stack: Stack) -> None:
    """Compose's commands migrate, serve /readyz, run a worker and beat, and show them in Flower."""
    argv, _ = stack.argv("migrate")
    migrated = stack.run("migrate", argv)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr

    api = stack.start("api")
    base = f"http://127.0.0.1:{stack.ports['api']}"
    wait_for(lambda: _http(f"{base}/readyz")[0] == 200 or not api.alive(), 60, "API /readyz")
    assert api.alive(), _log(stack)
    assert _http(f"{base}/healthz")[0] == 200

    worker = stack.start("worker")
    wait_for(lambda: stack.healthcheck("--worker").returncode == 0 or not worker.alive(),
             90, "rdev healthcheck --worker", every=1)
    assert worker.alive(), _log(stack)
    assert stack.healthcheck().returncode == 0

    beat = stack.start("beat")
    # Beat's maintenance job runs (in beat itself or on a worker, as rdev's scheduler decides).
    wait_for(
        lambda: re.search(r"rdev\.maintenance\.redispatch\[\S+\] succeeded",
                          beat.output() + worker.output())
        or not beat.alive(),
        60, "beat's redispatch job to run", every=0.5,
    )
    assert beat.alive(), _log(stack)

    flower = stack.start("flower")
    auth = stack.env("flower")["FLOWER_BASIC_AUTH"].split(",")[0]
    flower_url = f"http://127.0.0.1:{stack.ports['flower']}"
    wait_for(lambda: _http(f"{flower_url}/healthcheck")[0] == 200 or not flower.alive(),
             60, "Flower /healthcheck", every=0.5)
    assert flower.alive(), _log(stack)
    assert _http(f"{flower_url}/api/workers")[0] == 401, "Flower answered without credentials"

    def flower_sees_worker() -> bool:
        status, body = _http(f"{flower_url}/api/workers?refresh=1", auth)
        return status == 200 and NODE in json.loads(body or b"{}")

    wait_for(flower_sees_worker, 60, f"Flower to list {NODE}", every=1)

    # A task sent through the API runs on the worker; Flower shows it by name with its id.
    repo = stack.scratch / "repo"
    repo.mkdir()
    for git in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "empty"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *git],
                       cwd=repo, check=True, capture_output=True, timeout=30)
    status, body = _http(f"{base}/work/enqueue", body={
        "project_id": "deploy-test", "type": "test", "max_retries": 0,
        "spec": {"git_clone_url": repo.as_uri(), "command": ["true"]},
    })
    assert status == 201, body
    task_id = json.loads(body)["id"]

    def finished() -> dict[str, Any] | None:
        task: dict[str, Any] = json.loads(_http(f"{base}/work/{task_id}")[1] or b"{}")
        return task if task.get("status") in {"completed", "failed", "cancelled"} else None

    task = wait_for(finished, 60, f"task {task_id} to finish", every=0.5)
    assert task["status"] == "completed", task

    def flower_shows_task() -> bool:
        status, body = _http(f"{flower_url}/api/tasks?limit=100", auth)
        tasks = json.loads(body or b"{}") if status == 200 else {}
        return any(info.get("name") == "rdev.execute"
                   and task_id in f"{info.get('args')} {info.get('kwargs')}"
                   for info in tasks.values())

    wait_for(flower_shows_task, 30, "Flower to show the task as rdev.execute(<id>)", every=1)


def test_chart_prestop_drains_the_worker(stack: Stack) -> None:
    """The chart's preStop stops the worker consuming its queue, and SIGTERM then exits cleanly."""
    worker = stack.processes.get("worker")
    if worker is None or not worker.alive():
        pytest.skip("the stack did not start a worker")
    if not HELM_PYTHON.exists() and os.environ.get("CI") != "true":
        pytest.skip(f"{HELM_PYTHON} is missing: run .ci/setup.d/30-helm.sh")
    pod = one(render(), "Deployment", "-worker")["spec"]["template"]["spec"]
    drain = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    drained = stack.run("worker", drain, timeout=60)
    assert drained.returncode == 0, drained.stdout + drained.stderr

    def consumed_queues() -> list[str]:
        result = stack.run("worker", [str(BIN / "celery"), "-A", "rdev", "inspect",
                                      "active_queues", "-d", NODE, "--json"], timeout=30)
        replies = json.loads(result.stdout or "{}")
        return [queue["name"] for queue in replies.get(NODE, [])]

    assert consumed_queues() == [], "the worker still consumes after the preStop drain"
    assert stack.healthcheck("--worker").returncode == 0, "a draining worker is still alive"

    worker.popen.send_signal(signal.SIGTERM)
    assert worker.popen.wait(timeout=60) == 0, worker.output()[-3000:]


def test_chart_claudebox_sidecar_answers_its_probe(stack: Stack) -> None:
    """The chart's claudebox sidecar command starts and the chart's probe passes against it."""
    pod = one(render(ALL_ON), "Deployment", "-worker")["spec"]["template"]["spec"]
    (sidecar,) = pod["initContainers"]
    argv, port = _localize(sidecar["args"], stack.scratch)
    assert port
    old_port = sidecar["args"][sidecar["args"].index("--port") + 1]
    probe = [word.replace(f":{old_port}/", f":{port}/")
             for word in sidecar["readinessProbe"]["exec"]["command"]]
    probe[0] = str(BIN / probe[0])
    env = stack.env("worker")
    claudebox = Process(argv, env, stack.scratch / "claudebox.log")
    stack.processes["claudebox"] = claudebox

    def probe_passes() -> bool:
        result = subprocess.run(probe, env=env, capture_output=True, timeout=30, check=False)
        return result.returncode == 0

    wait_for(lambda: probe_passes() or not claudebox.alive(), 30, "claudebox's probe", every=0.5)
    assert claudebox.alive(), claudebox.output()[-3000:]

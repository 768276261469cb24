"""`rdev claudebox`: the sidecar HTTP server that runs agents and git next to a worker.

The protocol is documented in docs/claudebox.md. `/execute` runs a request on one of this machine's
adapters (the registry's, minus `claudebox` itself) and streams NDJSON lines: `event` lines while
it runs, `heartbeat` lines while it is quiet, and one final `result` line. A client that disconnects
cancels its run; `POST /execute/<run_id>/cancel` cancels explicitly.
"""

from __future__ import annotations

import json
import queue
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.serving import make_server

from rdev import errors
from rdev.agents import gitops, process, registry
from rdev.agents.base import AgentAdapter, AgentEvent, AgentRequest, AgentResult
from rdev.codes import ErrorCode
from rdev.config import Settings

HEARTBEAT_S = 5.0
SELF = "claudebox"


bp = Blueprint("claudebox", __name__)


def create_app(settings: Settings, heartbeat_s: float = HEARTBEAT_S) -> Flask:
    """The claudebox Flask app; nothing runs until a request arrives.

    `heartbeat_s` is how often a quiet `/execute` stream gets a heartbeat line, which is also how
    soon a client that went away is noticed (and its run cancelled).
    """
    app = Flask("rdev.claudebox")
    app.extensions["claudebox"] = _Sidecar(settings, _Runs(heartbeat_s))
    app.register_blueprint(bp)
    app.register_error_handler(errors.InvalidRequest, _invalid)
    app.register_error_handler(gitops.GitError, _git_failed)
    return app


class _Sidecar:
    """The state one claudebox app serves from: its settings and its running agents."""

    def __init__(self, settings: Settings, runs: _Runs) -> None:
        self.settings = settings
        self.runs = runs


def _sidecar() -> _Sidecar:
    found: _Sidecar = current_app.extensions["claudebox"]
    return found


def _invalid(exc: errors.InvalidRequest) -> tuple[Response, int]:
    return _error(ErrorCode.INVALID_SPEC, exc.message, 400, field=exc.field)


def _git_failed(exc: gitops.GitError) -> tuple[Response, int]:
    return _error(ErrorCode.AGENT_ERROR, exc.message, 502)


@bp.get("/health")
def health() -> Response:
    """Healthy, with the default provider and what each provider can do here."""
    settings = _sidecar().settings
    return jsonify(healthy=True, default=_provider(settings, None), providers=_providers(settings))


@bp.post("/execute")
def execute() -> Response:
    """Run an agent request and stream its events, heartbeats and result as NDJSON."""
    sidecar, body = _sidecar(), _body()
    provider = _provider(sidecar.settings, body.get("provider"))
    agent_request = AgentRequest.from_json(body.get("request") or {})
    agent_request.validate(float(sidecar.settings.max_task_timeout_s))
    run_id = uuid.uuid4().hex
    adapter = registry.create(provider, sidecar.settings)
    stream = sidecar.runs.start(run_id, adapter, agent_request)
    return Response(stream, mimetype="application/x-ndjson", headers={"X-Run-Id": run_id})


@bp.post("/execute/<run_id>/cancel")
def cancel(run_id: str) -> tuple[Response, int]:
    """Cancel a running `/execute`; 404 when no such run is going."""
    found = _sidecar().runs.cancel(run_id)
    return jsonify(cancelled=found), 202 if found else 404


@bp.post("/git/clone")
def clone() -> tuple[Response, int]:
    """Clone a repository into `dest`; a repository that cannot be cloned is INVALID_SPEC."""
    body = _body()
    url, dest = _required(body, "url"), Path(_required(body, "dest"))
    try:
        cloned = gitops.clone(url, dest, body.get("branch"), body.get("depth"))
    except gitops.GitError as exc:
        raise errors.InvalidSpec(f"repository not cloneable: {exc}", field="url") from None
    return jsonify(path=cloned.path, sha=cloned.sha, branch=cloned.branch), 200


@bp.post("/git/commit-and-push")
def commit_and_push() -> tuple[Response, int]:
    """Commit what changed in `path`, and push it when asked."""
    body = _body()
    done = gitops.commit_and_push(
        Path(_required(body, "path")),
        _required(body, "message"),
        push=bool(body.get("push", False)),
        branch=body.get("branch"),
        remote=body.get("remote") or "origin",
    )
    return jsonify(
        sha=done.sha, committed=done.sha is not None, pushed=done.pushed,
        files_changed=done.files_changed,
    ), 200


@bp.post("/sdlc")
def sdlc() -> tuple[Response, int]:
    """Run an SDLC command (an argument list, no shell) in `cwd`."""
    body = _body()
    argv = body.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise errors.InvalidSpec("argv must be a non-empty list of strings", field="argv")
    timeout_s = float(body.get("timeout_s") or _sidecar().settings.task_timeout_s)
    done = process.run_command(argv, cwd=Path(_required(body, "cwd")), timeout_s=timeout_s)
    return jsonify(
        exit_code=done.exit_code, timed_out=done.timed_out, output_tail=done.output[-8000:]
    ), 200


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise errors.InvalidSpec("the body must be a JSON object", field="body")
    return body


def _required(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise errors.InvalidSpec(f"{name} is required", field=name)
    return value


def _error(code: ErrorCode, message: str, status: int, **details: Any) -> tuple[Response, int]:
    return jsonify(error={"code": str(code), "message": message, "details": details}), status


def _provider(settings: Settings, name: object) -> str:
    """The provider to run; the sidecar never forwards to another sidecar."""
    chosen = registry.resolve(str(name) if name else None, settings)
    if chosen == SELF:
        chosen = next(n for n in registry.names() if n != SELF)
    return chosen


def _providers(settings: Settings) -> dict[str, Any]:
    out = {}
    for name in registry.names():
        if name != SELF:
            adapter = registry.create(name, settings)
            check = adapter.check_available(timeout_s=5.0)
            caps = adapter.capabilities()
            out[name] = {
                "available": check.ok,
                "detail": check.detail,
                "capabilities": {
                    "streaming": caps.streaming,
                    "resume": caps.resume,
                    "cancel": caps.cancel,
                },
            }
    return out


class _Runs:
    """The runs in progress, by id, so they can be cancelled."""

    def __init__(self, heartbeat_s: float) -> None:
        self.heartbeat_s = heartbeat_s
        self._lock = threading.Lock()
        self._adapters: dict[str, AgentAdapter] = {}

    def start(
        self, run_id: str, adapter: AgentAdapter, agent_request: AgentRequest
    ) -> Iterator[bytes]:
        """Start the run in a thread; returns the NDJSON stream of its events and result."""
        lines: queue.Queue[bytes | None] = queue.Queue()
        with self._lock:
            self._adapters[run_id] = adapter

        def on_event(event: AgentEvent) -> None:
            lines.put(_line({"type": "event", "event": event.to_json()}))

        def work() -> None:
            try:
                result = adapter.run(agent_request, on_event)
            except Exception as exc:
                result = AgentResult(
                    success=False,
                    error_code=ErrorCode.AGENT_ERROR,
                    error_message=f"claudebox: {exc}",
                    error_kind="unknown",
                )
            lines.put(_line({"type": "result", "result": result.to_json()}))
            lines.put(None)

        threading.Thread(target=work, daemon=True, name=f"claudebox-{run_id}").start()
        return self._stream(run_id, adapter, lines)

    def _stream(
        self, run_id: str, adapter: AgentAdapter, lines: queue.Queue[bytes | None]
    ) -> Iterator[bytes]:
        finished = False
        try:
            while True:
                try:
                    line = lines.get(timeout=self.heartbeat_s)
                except queue.Empty:
                    line = _line({"type": "heartbeat"})
                if line is None:
                    finished = True
                    return
                yield line
        finally:
            if not finished:
                adapter.cancel()  # the client went away
            with self._lock:
                self._adapters.pop(run_id, None)

    def cancel(self, run_id: str) -> bool:
        """Cancel a run in progress; False when there is none with that id."""
        with self._lock:
            adapter = self._adapters.get(run_id)
        if adapter is not None:
            adapter.cancel()
        return adapter is not None


def _line(payload: dict[str, Any]) -> bytes:
    return (json.dumps(payload) + "\n").encode()


def serve(host: str, port: int, settings: Settings) -> None:
    """Serve the claudebox API until interrupted (threaded; one thread per request)."""
    server = make_server(host, port, create_app(settings), threaded=True)
    click.echo(f"claudebox listening on http://{host}:{server.server_port}")
    server.serve_forever()


def claudebox_command() -> click.Command:
    """The `rdev claudebox --host H --port P` command."""

    @click.command("claudebox")
    @click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
    @click.option("--port", default=8787, show_default=True, type=int, help="Port to bind.")
    def claudebox(host: str, port: int) -> None:
        """Run the claudebox sidecar: agents and git over localhost HTTP."""
        serve(host, port, Settings.from_env())

    return claudebox

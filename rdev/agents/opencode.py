"""The OpenCode adapter: one session on an `opencode serve` HTTP server.

The server is `Settings.opencode_url` (Basic auth user `opencode`, `Settings.opencode_password`),
or, when no URL is configured, one the adapter starts for the run in the request's directory (with a
random password) and stops afterwards. The loop follows agent-protocols.md §2.4: subscribe to
`/event` first, create (or resume) the session, `prompt_async`, then follow only this session's
events until `session.idle`; on cancel or timeout `POST /session/{id}/abort`. HTTP errors carry the
status and the start of the body.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, ClassVar
from urllib.parse import quote

import httpx

from rdev import errors
from rdev.agents import process
from rdev.agents.base import (
    AgentAdapter,
    AgentEvent,
    AgentRequest,
    AgentResult,
    Availability,
    Capabilities,
    EventCallback,
    EventKind,
    cancelled_result,
    failed_result,
)
from rdev.agents.classify import TIMED_OUT, UNKNOWN_FAILURE, Classification, Signals, classify
from rdev.agents.httpcalls import HttpError, check, iter_sse
from rdev.agents.inbox import Inbox, Stop
from rdev.agents.opencode_stream import OpenCodeStream
from rdev.codes import ErrorCode

USERNAME = "opencode"
STARTUP_TIMEOUT_S = 60.0
OPTIONS = frozenset({"agent", "system"})


class OpenCodeAdapter(AgentAdapter):
    """Runs one request as an OpenCode session."""

    name: ClassVar[str] = "opencode"
    options: ClassVar[frozenset[str] | None] = OPTIONS

    def capabilities(self) -> Capabilities:
        """OpenCode streams events, resumes sessions (by id) and aborts."""
        return Capabilities(streaming=True, resume=True, cancel=True)

    def check_available(self, timeout_s: float = 5.0) -> Availability:
        """The configured server answers `/global/health`, or `opencode --version` runs."""
        if not self.settings.opencode_url:
            done = process.run_command(
                [self.settings.opencode_bin, "--version"], timeout_s=timeout_s
            )
            return Availability(done.exit_code == 0, done.output.strip()[:200])
        try:
            with self._client(self.settings.opencode_url, self._auth(), timeout_s) as client:
                health = check(client.get("/global/health")).json()
        except (httpx.HTTPError, HttpError, ValueError) as exc:
            return Availability(False, f"{self.settings.opencode_url}: {exc}")
        return Availability(bool(health.get("healthy")), json.dumps(health))

    def _auth(self) -> tuple[str, str] | None:
        password = self.settings.opencode_password
        return (USERNAME, password) if password else None

    def _client(self, url: str, auth: tuple[str, str] | None, timeout_s: float) -> httpx.Client:
        return httpx.Client(base_url=url, auth=auth, timeout=timeout_s)

    def _execute(self, request: AgentRequest, on_event: EventCallback) -> AgentResult:
        if request.allowed_tools:
            # OpenCode can only switch named tools on or off, not restrict to a list; refusing is
            # safer than running with more tools than the caller allowed.
            raise errors.InvalidSpec(
                "allowed_tools is not supported by the opencode provider", field="allowed_tools"
            )
        inbox: Inbox[dict[str, Any]] = Inbox(self.idle_timeout(request), request.timeout_s)
        self.on_cancel(inbox.wake)
        with self._server(request, inbox) as (url, auth):
            if self.cancelled:
                return cancelled_result(request.session_id)
            if url is None:
                return failed_result(Classification("config", ErrorCode.AGENT_ERROR), str(auth))
            with self._client(url, auth, 30.0) as client:
                return _Session(self, client, request, inbox, on_event).run()

    @contextlib.contextmanager
    def _server(
        self, request: AgentRequest, inbox: Inbox[dict[str, Any]]
    ) -> Iterator[tuple[str | None, Any]]:
        """The server URL and auth; starts and finally stops an owned server when none is set."""
        if self.settings.opencode_url:
            yield self.settings.opencode_url, self._auth()
            return
        password = secrets.token_urlsafe(16)
        port = _free_port()
        env = process.agent_env({**request.env, "OPENCODE_SERVER_PASSWORD": password})
        argv = [self.settings.opencode_bin, "serve", "--port", str(port), "--hostname", "127.0.0.1"]
        with tempfile.TemporaryFile() as log:
            try:
                proc = process.spawn_server(argv, cwd=request.cwd, env=env, log=log)
            except OSError as exc:
                yield None, f"command not found: {argv[0]} ({exc.strerror or exc})"
                return
            try:
                url, auth = f"http://127.0.0.1:{port}", (USERNAME, password)
                error = _wait_healthy(
                    url, auth, proc=proc, log=log, inbox=inbox, cancelled=lambda: self.cancelled
                )
                yield (None, error) if error else (url, auth)
            finally:
                grace = self.settings.agent_stop_grace_s
                process.stop_group(proc, grace, grace)


class _Session:
    """One prompt on one OpenCode session, from subscription to the final result."""

    def __init__(
        self,
        adapter: OpenCodeAdapter,
        client: httpx.Client,
        request: AgentRequest,
        inbox: Inbox[dict[str, Any]],
        on_event: EventCallback,
    ) -> None:
        self.adapter, self.client, self.request = adapter, client, request
        self.inbox, self.on_event = inbox, on_event
        self.headers = {"x-opencode-directory": quote(str(Path(request.cwd).resolve()), safe="/")}
        self._events: httpx.Response | None = None

    def run(self) -> AgentResult:
        threading.Thread(target=self._read_events, daemon=True).start()
        try:
            stop = self._await_connected()
            if stop is None:
                return self._prompt()
            if self.adapter.cancelled:
                return cancelled_result(self.request.session_id)
            return failed_result(*_stop_failure(stop, self.inbox))
        except HttpError as exc:
            return failed_result(classify([exc.message], Signals(status=exc.status)), exc.message)
        except httpx.HTTPError as exc:
            return failed_result(TIMED_OUT, f"opencode: {exc}")
        finally:
            if self._events is not None:
                self._events.close()

    def _prompt(self) -> AgentResult:
        session_id = self._session()
        self.on_event(AgentEvent(EventKind.INIT, {"session_id": session_id}))
        stream = OpenCodeStream(
            session_id,
            self.on_event,
            max_turns=self.request.max_turns,
            retry_budget=self.adapter.settings.agent_api_retry_budget,
        )
        check(
            self.client.post(
                f"/session/{session_id}/prompt_async", headers=self.headers, json=self._body()
            )
        )
        self.inbox.start()
        stop = self._follow(stream)
        if stop is not None or stream.failure is not None:
            self._abort(session_id)
        cancelled = stop == Stop.WAKE and self.adapter.cancelled
        if stop in (Stop.IDLE, Stop.WALL, Stop.EOF):
            stream.fail(*_stop_failure(stop, self.inbox))
        result = stream.result(cancelled=cancelled)
        self.on_event(AgentEvent(EventKind.RESULT, result.to_json()))
        return result

    def _await_connected(self) -> Stop | None:
        """Wait for the bus's `server.connected` frame, so no event of the run can be missed."""
        while True:
            item = self.inbox.get()
            if isinstance(item, Stop):
                if item != Stop.WAKE or self.adapter.cancelled:
                    return item
            elif item.get("type") == "server.connected":
                return None

    def _follow(self, stream: OpenCodeStream) -> Stop | None:
        while True:
            item = self.inbox.get()
            if isinstance(item, Stop):
                if item != Stop.WAKE or self.adapter.cancelled:
                    return item
                continue
            if stream.handle(item):
                return None

    def _session(self) -> str:
        if self.request.session_id:
            path = f"/session/{self.request.session_id}"
            response = self.client.get(path, headers=self.headers)
            if response.status_code == 404:
                raise HttpError(
                    f"GET {path} -> HTTP 404: No conversation found with session ID: "
                    f"{self.request.session_id}",
                    None,
                )
            return str(check(response).json()["id"])
        return str(check(self.client.post("/session", headers=self.headers, json={})).json()["id"])

    def _body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"parts": [{"type": "text", "text": self.request.prompt}]}
        if self.request.model:
            provider, _, model = self.request.model.rpartition("/")
            body["model"] = {"providerID": provider or "anthropic", "modelID": model}
        body.update({k: v for k, v in self.request.provider_options.items() if k in OPTIONS})
        return body

    def _abort(self, session_id: str) -> None:
        with contextlib.suppress(httpx.HTTPError):
            self.client.post(f"/session/{session_id}/abort", headers=self.headers, timeout=10.0)

    def _read_events(self) -> None:
        try:
            with self.client.stream(
                "GET", "/event", headers=self.headers, timeout=httpx.Timeout(10.0, read=None)
            ) as response:
                self._events = check(response)
                for data in iter_sse(response.iter_lines()):
                    self.inbox.put(json.loads(data))
        except (httpx.HTTPError, httpx.StreamError, HttpError, ValueError, OSError):
            pass  # the run loop sees the end of the stream (EOF) or its own timeout
        finally:
            self.inbox.finish()


def _stop_failure(stop: Stop, inbox: Inbox[Any]) -> tuple[Classification, str]:
    timeout = TIMED_OUT
    if stop == Stop.IDLE:
        return timeout, f"opencode sent no event for {inbox.idle_timeout_s:g} s"
    if stop == Stop.WALL:
        return timeout, f"opencode ran longer than the {inbox.timeout_s:g} s limit"
    return UNKNOWN_FAILURE, "opencode event stream closed"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(
    url: str,
    auth: tuple[str, str],
    *,
    proc: subprocess.Popen[bytes],
    log: IO[bytes],
    inbox: Inbox[Any],
    cancelled: Callable[[], bool],
) -> str | None:
    """None once `/global/health` answers; else why the owned server never came up."""
    deadline = time.monotonic() + min(STARTUP_TIMEOUT_S, inbox.timeout_s)
    while time.monotonic() < deadline and not cancelled():
        if process.has_exited(proc.pid):
            log.seek(0)
            tail = log.read()[-500:].decode("utf-8", "replace")
            return f"opencode serve exited before answering: {tail}"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/global/health", auth=auth, timeout=1.0).is_success:
                return None
        time.sleep(0.1)
    if cancelled():
        return "cancelled while opencode serve was starting"
    return f"opencode serve did not answer /global/health within {STARTUP_TIMEOUT_S:g} s"

"""The claudebox client: run agents and git through the sidecar at `Settings.claudebox_url`.

`ClaudeboxAdapter` is a full adapter whose agent runs in the sidecar (see claudebox_server.py and
docs/claudebox.md): it posts the request to `/execute`, relays the streamed events, and returns the
sidecar's result. `ClaudeboxClient` also exposes the sidecar's git and SDLC endpoints, so a worker
without agent binaries or git credentials can do a whole build through it.
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import httpx

from rdev.agents.base import (
    AgentAdapter,
    AgentEvent,
    AgentRequest,
    AgentResult,
    Availability,
    Capabilities,
    EventCallback,
    cancelled_result,
    failed_result,
)
from rdev.agents.classify import TIMED_OUT, UNKNOWN_FAILURE, Classification, Signals, classify
from rdev.agents.httpcalls import HttpError, check
from rdev.agents.inbox import Inbox, Stop
from rdev.codes import ErrorCode
from rdev.config import Settings

# The sidecar enforces the agent's own limits and reports them; the client waits this much longer
# before it gives up on the sidecar itself.
SIDECAR_SLACK_S = 30.0


class ClaudeboxClient:
    """Typed calls to one claudebox sidecar."""

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def http(self, timeout: httpx.Timeout | float | None = None) -> httpx.Client:
        """A client for the sidecar (the caller closes it)."""
        return httpx.Client(base_url=self.url, timeout=timeout or self.timeout_s)

    def _post(self, path: str, body: dict[str, Any], timeout_s: float | None = None) -> Any:
        with self.http(timeout_s) as client:
            return check(client.post(path, json=body)).json()

    def health(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """The sidecar's `/health` document."""
        with self.http(timeout_s) as client:
            return dict(check(client.get("/health")).json())

    def cancel(self, run_id: str) -> None:
        """Ask the sidecar to cancel run `run_id` (ignored if it already ended)."""
        with contextlib.suppress(httpx.HTTPError, HttpError):
            self._post(f"/execute/{run_id}/cancel", {})

    def git_clone(
        self, url: str, dest: Path, branch: str | None = None, depth: int | None = None
    ) -> dict[str, Any]:
        """Clone in the sidecar; returns `{path, sha, branch}`."""
        body = {"url": url, "dest": str(dest), "branch": branch, "depth": depth}
        return dict(self._post("/git/clone", body, 600.0))

    def commit_and_push(
        self, path: Path, message: str, *, push: bool, branch: str | None = None
    ) -> dict[str, Any]:
        """Commit (and push) in the sidecar; returns `{sha, committed, pushed, files_changed}`."""
        body = {"path": str(path), "message": message, "push": push, "branch": branch}
        return dict(self._post("/git/commit-and-push", body, 600.0))

    def sdlc(self, cwd: Path, argv: list[str], timeout_s: float) -> dict[str, Any]:
        """Run an SDLC command in the sidecar; returns `{exit_code, timed_out, output_tail}`."""
        body = {"cwd": str(cwd), "argv": argv, "timeout_s": timeout_s}
        return dict(self._post("/sdlc", body, timeout_s + SIDECAR_SLACK_S))


class ClaudeboxAdapter(AgentAdapter):
    """Runs a request in the sidecar; `provider_options["provider"]` picks the sidecar's adapter."""

    name: ClassVar[str] = "claudebox"
    options: ClassVar[frozenset[str] | None] = None  # forwarded to the sidecar's adapter

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.client = ClaudeboxClient(settings.claudebox_url or "")

    def capabilities(self) -> Capabilities:
        """The sidecar streams, resumes (through its adapter) and cancels."""
        return Capabilities(streaming=True, resume=True, cancel=True)

    def check_available(self, timeout_s: float = 5.0) -> Availability:
        """Available when `claudebox_url` is set and its `/health` reports a usable provider."""
        if not self.settings.claudebox_url:
            return Availability(False, "RDEV_CLAUDEBOX_URL is not set")
        try:
            health = self.client.health(timeout_s)
        except (httpx.HTTPError, HttpError, ValueError) as exc:
            return Availability(False, f"{self.client.url}: {exc}")
        usable = [n for n, p in (health.get("providers") or {}).items() if p.get("available")]
        detail = f"providers: {', '.join(usable) or 'none'}"
        return Availability(bool(health.get("healthy")) and bool(usable), detail)

    def _execute(self, request: AgentRequest, on_event: EventCallback) -> AgentResult:
        options = dict(request.provider_options)
        body = {
            "provider": options.pop("provider", None),
            "request": replace(request, provider_options=options).to_json(),
        }
        idle = self.idle_timeout(request) + SIDECAR_SLACK_S
        inbox: Inbox[dict[str, Any]] = Inbox(idle, request.timeout_s + SIDECAR_SLACK_S)
        self.on_cancel(inbox.wake)
        if self.cancelled:
            return cancelled_result(request.session_id)
        reader = _Reader(self.client, body, inbox)
        threading.Thread(target=reader.run, daemon=True).start()
        try:
            return self._follow(request, inbox, reader, on_event)
        finally:
            reader.close()

    def _follow(
        self,
        request: AgentRequest,
        inbox: Inbox[dict[str, Any]],
        reader: _Reader,
        on_event: EventCallback,
    ) -> AgentResult:
        cancel_sent = False
        while True:
            item = inbox.get()
            if self.cancelled and not cancel_sent and reader.run_id:
                self.client.cancel(reader.run_id)
                cancel_sent = True
            if isinstance(item, Stop):
                if item == Stop.WAKE:
                    continue
                return self._stopped(item, request, reader)
            if item.get("type") == "event":
                on_event(AgentEvent.from_json(item["event"]))
            elif item.get("type") == "result":
                return AgentResult.from_json(item["result"])

    def _stopped(self, stop: Stop, request: AgentRequest, reader: _Reader) -> AgentResult:
        if self.cancelled:
            return cancelled_result(request.session_id)
        if reader.error is not None:
            found = classify([reader.error.message], Signals(status=reader.error.status))
            if reader.error.status == 400:
                found = Classification("invalid_request", ErrorCode.INVALID_SPEC)
            return failed_result(found, reader.error.message)
        if stop == Stop.EOF:
            return failed_result(UNKNOWN_FAILURE, "claudebox closed the stream without a result")
        return failed_result(
            TIMED_OUT,
            f"claudebox sent nothing for {reader.inbox.idle_timeout_s:g} s"
            if stop == Stop.IDLE
            else "claudebox exceeded the time limit",
        )


class _Reader:
    """Reads `/execute`'s NDJSON stream into an inbox (in its own thread)."""

    def __init__(
        self, client: ClaudeboxClient, body: dict[str, Any], inbox: Inbox[dict[str, Any]]
    ) -> None:
        self.client, self.body, self.inbox = client, body, inbox
        self.run_id: str | None = None
        self.error: HttpError | None = None
        self._http = client.http(httpx.Timeout(10.0, read=None))

    def run(self) -> None:
        try:
            with self._http.stream("POST", "/execute", json=self.body) as response:
                self.run_id = response.headers.get("x-run-id")
                check(response)
                for line in response.iter_lines():
                    if line.strip():
                        self._deliver(json.loads(line))
        except HttpError as exc:
            self.error = exc
        except (httpx.HTTPError, httpx.StreamError, ValueError, OSError) as exc:
            self.error = HttpError(f"POST /execute: {exc}", None)
        finally:
            self.inbox.finish()

    def _deliver(self, line: dict[str, Any]) -> None:
        self.inbox.put(line)  # heartbeats too: they keep the idle clock and the cancel check going

    def close(self) -> None:
        self._http.close()

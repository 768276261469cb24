"""A small stand-in for `opencode serve` (agent-protocols.md §6): health, sessions, prompt_async,
abort, and the `/event` bus, playing a scenario chosen by a `[scenario:NAME]` tag in the prompt.

Scenarios: `success` (a tool call, text, cost and tokens, then idle), `auth` (session.error
ProviderAuthError), `rate_limit` (retry statuses, as OpenCode retries forever), `stall` (busy, then
silence). An abort ends a running session with MessageAbortedError and idle, as the real server
does.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _frame(kind: str, **props: Any) -> dict[str, Any]:
    return {"type": kind, "properties": props}


def _assistant(sid: str, cost: float, tokens: tuple[int, int], error: Any = None) -> dict[str, Any]:
    info = {
        "id": "msg_a1",
        "sessionID": sid,
        "role": "assistant",
        "cost": cost,
        "tokens": {
            "input": tokens[0],
            "output": tokens[1],
            "reasoning": 0,
            "cache": {"read": 0, "write": 0},
        },
    }
    if error:
        info["error"] = error
    return _frame("message.updated", sessionID=sid, info=info)


def _part(sid: str, **part: Any) -> dict[str, Any]:
    return _frame(
        "message.part.updated",
        sessionID=sid,
        part={"sessionID": sid, "messageID": "msg_a1", **part},
    )


def scenario_frames(name: str, sid: str) -> list[dict[str, Any]]:
    """The frames a scenario publishes after prompt_async."""
    busy = _frame("session.status", sessionID=sid, status={"type": "busy"})
    if name == "success":
        return [
            busy,
            _part(sid, id="p0", type="step-start"),
            _part(
                sid,
                id="p1",
                type="tool",
                callID="call_1",
                tool="write",
                state={
                    "status": "completed",
                    "input": {"filePath": "a.txt"},
                    "output": "Wrote file successfully.",
                },
            ),
            _part(sid, id="p2", type="text", text="All done.", time={"start": 1, "end": 2}),
            _assistant(sid, 0.0042, (300, 25)),
            _frame("session.idle", sessionID=sid),
        ]
    if name == "auth":
        error = {
            "name": "ProviderAuthError",
            "data": {"providerID": "anthropic", "message": "Invalid API key"},
        }
        return [busy, _frame("session.error", sessionID=sid, error=error)]
    if name == "rate_limit":
        retry = {
            "type": "retry",
            "attempt": 1,
            "message": "Rate Limited",
            "next": int(time.time() * 1000) + 20_000,
        }
        return [busy, _frame("session.status", sessionID=sid, status=retry)] * 3
    return [busy]  # stall


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.subscribers: list[queue.Queue[dict[str, Any] | None]] = []
        self.sessions: dict[str, str] = {}
        self.aborted: list[str] = []

    def publish(self, frame: dict[str, Any]) -> None:
        with self.lock:
            for subscriber in self.subscribers:
                subscriber.put(frame)


class _Handler(BaseHTTPRequestHandler):
    server: FakeOpenCode
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("content-length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def _authorized(self) -> bool:
        password = self.server.password
        if password is None:
            return True
        expected = "Basic " + base64.b64encode(f"opencode:{password}".encode()).decode()
        if self.headers.get("authorization") == expected:
            return True
        self._json(401, {"name": "Unauthorized", "data": {"message": "bad password"}})
        return False

    def do_GET(self) -> None:
        if not self._authorized():
            return
        state = self.server.state
        if self.path == "/global/health":
            self._json(200, {"healthy": True, "version": "fake"})
        elif self.path == "/event":
            self._events()
        elif self.path.startswith("/session/") and self.path[9:] in state.sessions:
            self._json(200, {"id": self.path[9:]})
        else:
            self._json(404, {"name": "NotFoundError", "data": {"message": "no such session"}})

    def do_POST(self) -> None:
        body = self._body()
        if not self._authorized():
            return
        state = self.server.state
        parts = self.path.strip("/").split("/")
        if parts == ["session"]:
            sid = f"ses_fake{len(state.sessions) + 1}"
            state.sessions[sid] = "idle"
            self._json(200, {"id": sid})
        elif len(parts) == 3 and parts[2] == "prompt_async" and parts[1] in state.sessions:
            text = " ".join(p.get("text", "") for p in body.get("parts", []))
            tag = re.search(r"\[scenario:([a-z_]+)\]", text)
            self._no_content()
            for frame in scenario_frames(tag.group(1) if tag else "success", parts[1]):
                state.publish(frame)
        elif len(parts) == 3 and parts[2] == "abort":
            state.aborted.append(parts[1])
            error = {"name": "MessageAbortedError", "data": {"message": "Aborted"}}
            state.publish(_assistant(parts[1], 0.0, (0, 0), error))
            state.publish(_frame("session.idle", sessionID=parts[1]))
            self._json(200, True)
        else:
            self._json(404, {"name": "NotFoundError", "data": {"message": self.path}})

    def _no_content(self) -> None:
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def _events(self) -> None:
        subscriber: queue.Queue[dict[str, Any] | None] = queue.Queue()
        with self.server.state.lock:
            self.server.state.subscribers.append(subscriber)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        subscriber.put(_frame("server.connected"))
        try:
            while (frame := subscriber.get()) is not None:
                self.wfile.write(f"data: {json.dumps(frame)}\n\n".encode())
                self.wfile.flush()
        except OSError:
            pass  # the client hung up
        finally:
            with self.server.state.lock:
                self.server.state.subscribers.remove(subscriber)
        self.close_connection = True


class FakeOpenCode(ThreadingHTTPServer):
    """The fake server on 127.0.0.1 with a free port; `close()` ends every event stream."""

    daemon_threads = True

    def __init__(self, port: int = 0, password: str | None = None) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.password = password
        self.state = _State()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        with self.state.lock:
            for subscriber in self.state.subscribers:
                subscriber.put(None)
        self.shutdown()
        self.server_close()


def main(argv: list[str]) -> None:
    """`fake_opencode.py serve --port P [--hostname H]`: serve in the foreground, like the real CLI
    (`--version` prints a version); honours OPENCODE_SERVER_PASSWORD."""
    if argv[:1] == ["--version"]:
        print("0.0.0-fake")
        return
    port = int(argv[argv.index("--port") + 1])
    server = FakeOpenCode(port, os.environ.get("OPENCODE_SERVER_PASSWORD"))
    threading.Event().wait()  # until the adapter stops our process group
    server.close()


if __name__ == "__main__":
    main(sys.argv[1:])

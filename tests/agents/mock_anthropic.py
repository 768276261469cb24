"""A small Anthropic Messages API server for running the real agent CLIs with no internet.

It speaks just enough of `POST /v1/messages` (streaming server-sent events, or one JSON body) for
Claude Code and OpenCode to run their agent loop: the first turn asks for a file write with the
agent's own tool name, the turn after the tool result answers with text. Failure modes answer every
call with an HTTP error, or hold the response open so a run can be cancelled while it waits.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FILE_NAME = "hello.txt"
FILE_CONTENT = "written by the agent\n"
FINAL_TEXT = "I wrote hello.txt."


@dataclass
class Behaviour:
    """What the mock answers: `write` (the normal loop), `status` (an HTTP error), or `hang`."""

    mode: str = "write"
    status: int = 200
    error_type: str = "api_error"
    retry_after_s: int | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _last_user_has_tool_result(body: dict[str, Any]) -> bool:
    messages = body.get("messages") or []
    if not messages:
        return False
    content = messages[-1].get("content")
    if not isinstance(content, list):
        return False
    return any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


def _write_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    """The file-write call in the agent's dialect: `Write`/`file_path` or `write`/`filePath`."""
    names = {tool.get("name") for tool in body.get("tools") or [] if isinstance(tool, dict)}
    if "Write" in names:
        return {"name": "Write", "input": {"file_path": FILE_NAME, "content": FILE_CONTENT}}
    if "write" in names:
        return {"name": "write", "input": {"filePath": FILE_NAME, "content": FILE_CONTENT}}
    return None


def _reply_blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    tool = None if _last_user_has_tool_result(body) else _write_tool(body)
    if tool is None:
        return [{"type": "text", "text": FINAL_TEXT}]
    return [{"type": "tool_use", "id": "toolu_01mock", **tool}]


def _stream(blocks: list[dict[str, Any]]) -> Iterator[bytes]:
    stop = "tool_use" if blocks[0]["type"] == "tool_use" else "end_turn"
    yield _sse(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_01mock",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 100, "output_tokens": 1},
            },
        },
    )
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            start = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        yield _sse(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        )
        yield _sse(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        )
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
    yield _sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": 20},
        },
    )
    yield _sse("message_stop", {"type": "message_stop"})


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        behaviour = self.server.behaviour
        behaviour.requests.append({"path": self.path, "body": body})
        if not self.path.startswith("/v1/messages") or self.path.startswith("/v1/messages/count"):
            self._json(200, {"input_tokens": 100})
        elif behaviour.mode == "hang":
            behaviour.release.wait(60)
            self._json(
                529, {"type": "error", "error": {"type": "overloaded_error", "message": "gone"}}
            )
        elif behaviour.mode == "status":
            self._error(behaviour)
        elif body.get("stream"):
            self._events(_stream(_reply_blocks(body)))
        else:
            self._json(
                200,
                {
                    "id": "msg_01mock",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-5",
                    "content": _reply_blocks(body),
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": 100, "output_tokens": 20},
                },
            )

    def _error(self, behaviour: Behaviour) -> None:
        headers = {}
        if behaviour.retry_after_s is not None:
            headers["retry-after"] = str(behaviour.retry_after_s)
        payload = {
            "type": "error",
            "error": {"type": behaviour.error_type, "message": "mock error"},
        }
        self._json(behaviour.status, payload, headers)

    def _json(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _events(self, chunks: Iterator[bytes]) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(chunk)
            self.wfile.flush()
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Agents hang up on purpose (cancel, abort); that is no test failure."""

    def __init__(self, behaviour: Behaviour) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.behaviour = behaviour


class MockAnthropic:
    """A running mock on 127.0.0.1 with a free port; use as a context manager."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self._server = _Server(self.behaviour)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> MockAnthropic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.behaviour.release.set()
        self._server.shutdown()
        self._server.server_close()

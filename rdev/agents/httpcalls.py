"""HTTP helpers shared by the adapters that talk to agent servers (OpenCode, claudebox).

Errors from those servers become `HttpError`, whose message names the call, the status and the start
of the body; `iter_sse` reads the `data` payloads of a server-sent event stream from httpx's lines.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx


class HttpError(Exception):
    """An HTTP call to an agent server failed; the message names the status and body start."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message, status)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return self.message


def check(response: httpx.Response) -> httpx.Response:
    """Raise `HttpError` for a non-2xx response, with the status and the first 300 body chars."""
    if response.is_success:
        return response
    with contextlib.suppress(httpx.HTTPError):
        response.read()  # a streamed response has no body until read
    body = response.text[:300]
    request = response.request
    raise HttpError(
        f"{request.method} {request.url.path} -> HTTP {response.status_code}: {body}",
        response.status_code,
    )


def iter_sse(lines: Iterator[str]) -> Iterator[str]:
    """The `data` payloads of a server-sent event stream, one per event."""
    data: list[str] = []
    for line in lines:
        if line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
        elif not line and data:
            yield "\n".join(data)
            data = []
    if data:
        yield "\n".join(data)

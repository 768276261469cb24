"""A git smart-HTTP server for tests: `git http-backend` behind HTTP Basic auth, in a thread."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tests.agents.conftest import ServerThread

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class GitHttp:
    """Serves the bare repositories under `root`, to clients with `user:password` only."""

    def __init__(self, root: Path, user: str, password: str) -> None:
        self.root = root
        self.expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.seen_auth: list[str] = []
        self.server = ServerThread(self)

    @property
    def url(self) -> str:
        return self.server.url

    def __call__(self, environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        auth = environ.get("HTTP_AUTHORIZATION", "")
        self.seen_auth.append(auth)
        if auth != self.expected:
            start("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"')])
            return [b"unauthorized\n"]
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        cgi_env = {"GIT_PROJECT_ROOT": str(self.root), "GIT_HTTP_EXPORT_ALL": "1",
                   "PATH_INFO": environ["PATH_INFO"], "QUERY_STRING": environ["QUERY_STRING"],
                   "REQUEST_METHOD": environ["REQUEST_METHOD"],
                   "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
                   "REMOTE_USER": "tester", "PATH": "/usr/bin:/bin"}
        done = subprocess.run(["git", "http-backend"], input=body, env=cgi_env,
                              capture_output=True, check=False)
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        headers = [tuple(line.split(": ", 1)) for line in head.decode().split("\r\n") if line]
        status = next((v for k, v in headers if k.lower() == "status"), "200 OK")
        start(status, [(k, v) for k, v in headers if k.lower() != "status"])
        return [payload]

    def close(self) -> None:
        self.server.close()


"""Serving the API with gunicorn, each worker process building its own app."""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from rdev.config import Settings
from rdev.web.app import create_app


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return create_app(self.settings)


def serve(settings: Settings, *, host: str, port: int, workers: int) -> None:
    """Serve until stopped (SIGTERM finishes in-flight requests first)."""
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": 8,
        "timeout": 60,
        "graceful_timeout": 20,
        "accesslog": "-",
        "loglevel": "info",
    }
    _Gunicorn(settings, options).run()

"""The Flask application factory."""

from __future__ import annotations

from flask import Flask

from rdev import handlers
from rdev.config import Settings
from rdev.tasks.celery_app import make_celery
from rdev.web import errors, fleet, health, openapi, stream, work

#: room for the envelope around the largest spec
BODY_SLACK_BYTES = 64 * 1024


def create_app(settings: Settings | None = None) -> Flask:
    """An rdev API for `settings` (default: from RDEV_* variables); connects to nothing yet."""
    settings = settings or Settings.from_env()
    handlers.load_plugins(settings)
    app = Flask("rdev")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_spec_bytes + BODY_SLACK_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["rdev"] = make_celery(settings).rdev
    for blueprint in (work.bp, stream.bp, health.bp, openapi.bp, fleet.bp):
        app.register_blueprint(blueprint)
    errors.register(app)
    return app

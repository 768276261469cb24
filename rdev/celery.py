"""The Celery app that `celery -A rdev worker|beat|flower` finds, configured from RDEV_*."""

from __future__ import annotations

from rdev.config import Settings
from rdev.tasks.celery_app import make_celery

app = make_celery(Settings.from_env())

"""The per-process wiring of rdev: settings, the database and the Celery app that publishes.

The API, the workers and beat each build one `Runtime`; nothing here connects until used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rdev.config import Settings
from rdev.db.engine import Database

if TYPE_CHECKING:
    from celery import Celery


class Runtime:
    """Settings plus the resources built from them."""

    def __init__(self, settings: Settings, celery_app: Celery) -> None:
        self.settings = settings
        self.db = Database(settings)
        self.celery = celery_app

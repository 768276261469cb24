"""The complete schema: every model module imported, for Alembic and the schema test."""

from __future__ import annotations

from sqlalchemy import MetaData

from rdev.db import models, models_execution, models_fleet  # noqa: F401 (each model module registers its tables)

metadata: MetaData = models.Base.metadata

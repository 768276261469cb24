"""The complete schema: every model module imported, for Alembic and the schema test."""

from __future__ import annotations

from sqlalchemy import MetaData

from rdev.db import models

metadata: MetaData = models.Base.metadata

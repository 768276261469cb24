"""PostgreSQL: models, migrations, named queries and per-process engines."""

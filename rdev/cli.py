"""The `rdev` command: serve the API, migrate the database, check health, run everything embedded.

Workers, beat and Flower are Celery's own commands: `celery -A rdev worker|beat|flower`.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

import click

from rdev import health
from rdev.agents import claudebox_server
from rdev.config import Settings
from rdev.db import migrate
from rdev.errors import ConfigError


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.UsageError(f"bad configuration: {exc}") from None


@click.group()
@click.version_option(package_name="rdev")
def main() -> None:
    """rdev: run AI coding-agent jobs at scale."""


@main.command()
@click.option("--host", default=None, help="Address to bind (default RDEV_API_HOST).")
@click.option("--port", type=int, default=None, help="Port to bind (default RDEV_API_PORT).")
@click.option("--workers", type=int, default=None, help="Gunicorn workers (RDEV_API_WORKERS).")
def api(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the HTTP API with gunicorn."""
    from rdev.web.server import serve

    settings = _settings()
    serve(
        settings,
        host=host or settings.api_host,
        port=settings.api_port if port is None else port,
        workers=workers or settings.api_workers,
    )


@main.group()
def db() -> None:
    """Database schema migrations (Alembic)."""


@db.command()
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Migrate the schema up to REVISION (default: head)."""
    migrate.upgrade(_settings().database_url, revision)
    click.echo(f"database at {revision}")


@db.command()
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Migrate the schema down to REVISION."""
    migrate.downgrade(_settings().database_url, revision)
    click.echo(f"database at {revision}")


@db.command()
def current() -> None:
    """Print the schema's revision and the code's head."""
    from rdev.db.engine import make_engine

    engine = make_engine(_settings())
    try:
        click.echo(f"current: {migrate.current_revision(engine)}  head: {migrate.head_revision()}")
    finally:
        engine.dispose()


@main.command()
@click.option("--worker", "worker", is_flag=True, help="Also ping this host's Celery worker.")
@click.option("--node", default=None, help="Worker node name (default celery@HOSTNAME).")
def healthcheck(worker: bool, node: str | None) -> None:
    """Exit 0 when the database, broker and schema are ready (and the worker answers)."""
    from rdev.tasks.celery_app import make_celery

    runtime = make_celery(_settings()).rdev
    checks = health.readiness(runtime)
    if worker:
        checks.append(health.check_worker(runtime, node or f"celery@{socket.gethostname()}"))
    for check in checks:
        click.echo(f"{check.name}: {'ok' if check.ok else 'FAILED'} {check.detail}")
    sys.exit(0 if all(check.ok for check in checks) else 1)


@main.command()
@click.option("--data-dir", default=None, help="Where the embedded servers keep data.")
@click.option("--port", type=int, default=None, help="API port (default RDEV_API_PORT).")
def up(data_dir: str | None, port: int | None) -> None:
    """Run everything on this machine: PostgreSQL, Redis, API, worker, beat and Flower."""
    from rdev import embedded

    settings = _settings()
    external = settings.model_fields_set
    changes: dict[str, Any] = {}
    if data_dir:
        changes["data_dir"] = data_dir
    if port is not None:
        changes["api_port"] = port
    embedded.run(
        settings.with_overrides(**changes),
        embed_database="database_url" not in external,
        embed_broker="broker_url" not in external,
    )


main.add_command(claudebox_server.claudebox_command())

if __name__ == "__main__":
    main()

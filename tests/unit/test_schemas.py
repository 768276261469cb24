"""Request parsing, cursors and redaction of the API, without any service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from rdev import errors, handlers
from rdev.config import Settings
from rdev.db.models import Task
from rdev.web import schemas

SETTINGS = Settings()
BUILD = {"git_clone_url": "https://git.example/r.git", "prompt": "go"}


def parse(payload: Any, header: str | None = None) -> Any:
    return schemas.parse_enqueue(payload, header, SETTINGS)


def test_defaults_come_from_settings() -> None:
    """Omitted retries and timeout take the configured defaults."""
    new = parse({"project_id": "p", "type": "build", "spec": BUILD})
    assert (new.max_retries, new.timeout_s, new.priority) == (3, 900, 5)
    assert new.spec["auto_commit"] is True and new.spec["auto_push"] is False


def test_header_and_field_keys_must_agree() -> None:
    """An Idempotency-Key header that contradicts the body field is refused."""
    with pytest.raises(errors.InvalidRequest) as raised:
        parse({"project_id": "p", "type": "build", "spec": BUILD, "idempotency_key": "a"}, "b")
    assert raised.value.field == "idempotency_key"


def test_same_request_same_fingerprint() -> None:
    """Replays of one request hash alike; a changed field changes the hash."""
    body = {"project_id": "p", "type": "build", "spec": BUILD}
    first, again = parse(body, "k"), parse(dict(body), "k")
    changed = parse({**body, "priority": 9}, "k")
    assert first.request_hash == again.request_hash != changed.request_hash


def test_cursor_round_trip_and_rejects_forgeries() -> None:
    """A cursor decodes to the task it was made from; anything else is an InvalidRequest."""
    task = Task(id=uuid.uuid4(), created_at=datetime(2026, 1, 2, tzinfo=UTC))
    assert schemas.decode_cursor(schemas.encode_cursor(task)) == (task.created_at, task.id)
    for forged in ("", "!!!", "bm90IGpzb24", "WzFd"):
        with pytest.raises(errors.InvalidRequest):
            schemas.decode_cursor(forged)


@pytest.mark.parametrize(("url", "shown"), [
    ("https://user:s3cret@git.example/r.git", "https://***@git.example/r.git"),
    ("https://token@git.example/r.git", "https://***@git.example/r.git"),
    ("https://git.example/r.git", "https://git.example/r.git"),
    ("git@github.com:org/r.git", "git@github.com:org/r.git"),
])
def test_credentials_in_clone_urls_are_masked(url: str, shown: str) -> None:
    """Secrets inside a clone URL never reach API output."""
    assert schemas.redact_url(url) == shown


@pytest.mark.parametrize(("type_", "spec", "field"), [
    ("sdlc", {"git_clone_url": "https://g/r.git", "command": "rm -rf /"}, "spec.command"),
    ("sdlc", {"git_clone_url": "https://g/r.git", "command": "x", "args": "a b"}, "spec.args"),
    ("deploy", {"deployment": "api"}, "spec.image"),
    ("build", {**BUILD, "branch": "--upload-pack=x"}, "spec.branch"),
    ("build", {**BUILD, "max_turns": 0}, "spec.max_turns"),
])
def test_spec_errors_name_the_field(type_: str, spec: dict[str, Any], field: str) -> None:
    """Each spec model names the field at fault."""
    with pytest.raises(errors.InvalidSpec) as raised:
        handlers.validate_spec(type_, spec, SETTINGS)
    assert raised.value.field == field

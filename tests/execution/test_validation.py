"""Specs of the execution types are checked at enqueue: a bad one is 400 naming its field."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

pytestmark = pytest.mark.integration

REPO = "file:///srv/repo.git"


@pytest.mark.parametrize(("type_", "spec", "field"), [
    ("build", {"git_clone_url": REPO, "prompt": "p", "agent": "nope"}, "spec.agent"),
    ("build", {"git_clone_url": "not a url", "prompt": "p"}, "spec.git_clone_url"),
    ("sdlc", {"git_clone_url": REPO, "command": "plan", "args": "--all"}, "spec.args"),
    ("test", {"git_clone_url": REPO, "command": "pytest -q"}, "spec.command"),
    ("deploy", {"deployment": "Web_1", "image": "reg/web:2"}, "spec.deployment"),
])
def test_bad_spec_is_rejected_with_its_field(
    client: FlaskClient, type_: str, spec: dict[str, Any], field: str
) -> None:
    """Nothing is stored; the error is INVALID_SPEC and names the field at fault."""
    response = client.post("/work/enqueue", json={"project_id": "p", "type": type_,
                                                  "spec": spec})
    assert response.status_code == 400
    error = response.json["error"]  # type: ignore[index]
    assert error["code"] == "INVALID_SPEC"
    assert error["details"]["field"] == field
    assert client.get("/work").json["tasks"] == []  # type: ignore[index]

"""The request, event and result types, and the provider registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from rdev import errors
from rdev.agents import registry
from rdev.agents.base import AgentEvent, AgentRequest, AgentResult, EventKind
from rdev.agents.claude_code import ClaudeCodeAdapter
from rdev.agents.fake import FakeAgentAdapter
from rdev.codes import ErrorCode
from rdev.config import Settings


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"prompt": "  "}, "prompt"),
        ({"cwd": Path("/nonexistent/dir")}, "cwd"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": 10**9}, "timeout_s"),
        ({"idle_timeout_s": -1}, "idle_timeout_s"),
        ({"max_turns": 0}, "max_turns"),
        ({"max_turns": True}, "max_turns"),
        ({"session_id": "--dangerously-skip-permissions"}, "session_id"),
        ({"model": "-x"}, "model"),
        ({"env": {"BAD NAME": "1"}}, "env"),
        ({"allowed_tools": ("",)}, "allowed_tools"),
    ],
)
def test_validation_names_the_field(
    tmp_path: Path, fields: dict[str, object], bad_field: str
) -> None:
    """An unrunnable request raises InvalidSpec naming the field at fault."""
    values: dict[str, object] = {"prompt": "hi", "cwd": tmp_path, **fields}
    with pytest.raises(errors.InvalidSpec) as caught:
        AgentRequest(**values).validate(max_timeout_s=3600)  # type: ignore[arg-type]
    assert caught.value.field == bad_field


def test_valid_request_passes(tmp_path: Path) -> None:
    """A complete, sensible request validates."""
    request = AgentRequest(
        prompt="hi",
        cwd=tmp_path,
        model="sonnet",
        max_turns=3,
        timeout_s=60,
        session_id="98428278-d240-475c-ad41-b840a6a42ffb",
        env={"A_B": "1"},
        allowed_tools=("Bash(git *)", "Read"),
    )
    request.validate(max_timeout_s=3600)


def test_request_json_round_trip(tmp_path: Path) -> None:
    """A request survives to_json/from_json unchanged (how claudebox carries it)."""
    request = AgentRequest(
        prompt="hi",
        cwd=tmp_path,
        max_turns=2,
        env={"K": "v"},
        allowed_tools=("Read",),
        provider_options={"scenario": "auth"},
    )
    assert AgentRequest.from_json(request.to_json()) == request


def test_request_from_json_rejects_unknown_field(tmp_path: Path) -> None:
    """An unknown request field is InvalidSpec naming that field."""
    with pytest.raises(errors.InvalidSpec) as caught:
        AgentRequest.from_json({"prompt": "hi", "cwd": str(tmp_path), "colour": "red"})
    assert caught.value.field == "colour"


def test_event_and_result_json_round_trip() -> None:
    """Events and results survive to_json/from_json unchanged."""
    event = AgentEvent(EventKind.TOOL_USE, {"name": "Bash"}, '{"type":"assistant"}')
    result = AgentResult(
        success=False,
        error_code=ErrorCode.RATE_LIMITED,
        retry_after_s=30.0,
        error_kind="rate_limit",
        error_message="slow down",
    )
    assert AgentEvent.from_json(event.to_json()) == event
    assert AgentResult.from_json(result.to_json()) == result


def test_raise_for_error() -> None:
    """A failed result raises TaskFailure with its code and retry-after; success does not."""
    AgentResult(success=True).raise_for_error()
    failed = AgentResult(success=False, error_code=ErrorCode.AUTH_FAILED, error_message="bad key")
    with pytest.raises(errors.TaskFailure) as caught:
        failed.raise_for_error()
    assert caught.value.code == ErrorCode.AUTH_FAILED
    assert caught.value.message == "bad key"


def test_registry_order_and_default() -> None:
    """claude is the default; RDEV_AGENT picks another."""
    assert registry.names()[:4] == ["claude", "opencode", "claudebox", "fake"]
    assert isinstance(registry.create(None, Settings()), ClaudeCodeAdapter)
    assert isinstance(registry.create(None, Settings(agent="fake")), FakeAgentAdapter)


def test_registry_creates_fresh_adapters() -> None:
    """Each create() call returns a new adapter (one per run)."""
    assert registry.create("fake", Settings()) is not registry.create("fake", Settings())


def test_unknown_provider_is_invalid_spec() -> None:
    """An unknown provider is INVALID_SPEC on the `agent` field."""
    with pytest.raises(errors.InvalidSpec) as caught:
        registry.create("x", Settings())
    assert caught.value.field == "agent"
    assert "unknown agent provider 'x'" in caught.value.message


def test_duplicate_registration_refused() -> None:
    """A provider name registers once."""
    with pytest.raises(ValueError, match="already registered"):
        registry.register("fake", FakeAgentAdapter)


def test_available_lists_runnable_providers(tmp_path: Path) -> None:
    """Only providers whose check passes are advertised."""
    settings = Settings(claude_bin=str(tmp_path / "missing"), opencode_bin=str(tmp_path / "none"))
    assert registry.available(settings, timeout_s=5.0) == ["fake"]


def test_unknown_provider_option_is_invalid_spec(tmp_path: Path) -> None:
    """A provider option the adapter does not know is refused before anything runs."""
    request = AgentRequest(prompt="hi", cwd=tmp_path, provider_options={"colour": "red"})
    with pytest.raises(errors.InvalidSpec) as caught:
        registry.create("fake", Settings()).run(request, lambda event: None)
    assert caught.value.field == "provider_options"

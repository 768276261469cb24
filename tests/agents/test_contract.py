"""The contract every adapter passes: success, failure classification, cancel, timeout.

Each adapter runs against its stand-in: Claude Code and the fake provider run the bundled
`fake-claude` CLI, OpenCode talks to a fake `opencode serve`, claudebox to a real claudebox server.
Scenarios are chosen by a `[scenario:NAME]` tag in the prompt, which every stand-in understands.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rdev import errors
from rdev.agents import registry
from rdev.agents.base import AgentAdapter, AgentEvent, AgentRequest, AgentResult
from rdev.agents.fake import FAKE_CLAUDE
from rdev.codes import ErrorCode
from rdev.config import Settings
from tests.agents.fake_opencode import FakeOpenCode

PROVIDERS = ["claude", "fake", "opencode", "claudebox"]


@pytest.fixture
def fake_opencode() -> Iterator[FakeOpenCode]:
    """A fake OpenCode server."""
    server = FakeOpenCode()
    yield server
    server.close()


@pytest.fixture(params=PROVIDERS)
def make_adapter(request: pytest.FixtureRequest, settings: Settings) -> Callable[[], AgentAdapter]:
    """A factory of fresh adapters of one provider, wired to its stand-in."""
    name = request.param
    stand_in: dict[str, str] = {"claude_bin": str(FAKE_CLAUDE)}
    if name == "opencode":
        stand_in["opencode_url"] = request.getfixturevalue("fake_opencode").url
    if name == "claudebox":
        stand_in["claudebox_url"] = request.getfixturevalue("claudebox").url
    configured = settings.with_overrides(**stand_in)
    return lambda: registry.create(name, configured)


class Recorder:
    """An event callback that also signals when the agent has started."""

    def __init__(self) -> None:
        self.events: list[AgentEvent] = []
        self.started = threading.Event()

    def __call__(self, event: AgentEvent) -> None:
        self.events.append(event)
        if event.kind == "init":
            self.started.set()


def run(adapter: AgentAdapter, workdir: Path, prompt: str, **fields: object) -> AgentResult:
    """Run `prompt` in `workdir` and return the result."""
    return adapter.run(AgentRequest(prompt=prompt, cwd=workdir, **fields), Recorder())  # type: ignore[arg-type]


def test_success(make_adapter: Callable[[], AgentAdapter], workdir: Path) -> None:
    """A successful run returns its text, session id, cost and the init and result events."""
    recorder = Recorder()
    result = make_adapter().run(AgentRequest(prompt="say hi", cwd=workdir), recorder)
    kinds = [str(e.kind) for e in recorder.events]
    assert result.success, result
    assert result.text
    assert result.session_id
    assert result.cost_usd > 0
    assert result.error_code is None
    assert not result.cancelled
    assert kinds[0] == "init"
    assert "result" in kinds
    assert "tool_use" in kinds


def test_auth_failure_is_classified(
    make_adapter: Callable[[], AgentAdapter], workdir: Path
) -> None:
    """An invalid API key ends the run as AUTH_FAILED, never retried."""
    result = run(make_adapter(), workdir, "[scenario:auth] go")
    assert not result.success
    assert not result.cancelled
    assert result.error_code == ErrorCode.AUTH_FAILED
    assert result.error_kind == "auth"


def test_rate_limit_carries_retry_after(
    make_adapter: Callable[[], AgentAdapter], workdir: Path
) -> None:
    """Provider rate limiting is RATE_LIMITED with the retry-after the agent reported."""
    result = run(make_adapter(), workdir, "[scenario:rate_limit] go")
    assert result.error_code == ErrorCode.RATE_LIMITED
    assert result.retry_after_s is not None
    assert result.retry_after_s > 5


def test_cancel_mid_run(make_adapter: Callable[[], AgentAdapter], workdir: Path) -> None:
    """Cancel from another thread while the agent works ends the run as cancelled."""
    adapter, recorder = make_adapter(), Recorder()
    results: list[AgentResult] = []
    request = AgentRequest(prompt="[scenario:stall] go", cwd=workdir)
    worker = threading.Thread(target=lambda: results.append(adapter.run(request, recorder)))
    worker.start()
    assert recorder.started.wait(30), "the agent never started"
    adapter.cancel()
    adapter.cancel()  # idempotent
    worker.join(30)
    assert results
    assert results[0].cancelled
    assert results[0].error_code is None
    assert not results[0].success


def test_cancel_before_start(make_adapter: Callable[[], AgentAdapter], workdir: Path) -> None:
    """An adapter cancelled before it runs returns a cancelled result without starting."""
    adapter, recorder = make_adapter(), Recorder()
    adapter.cancel()
    result = adapter.run(AgentRequest(prompt="say hi", cwd=workdir), recorder)
    assert result.cancelled
    assert recorder.events == []


def test_cancel_after_end_is_harmless(
    make_adapter: Callable[[], AgentAdapter], workdir: Path
) -> None:
    """Cancelling a finished run changes nothing."""
    adapter = make_adapter()
    result = run(adapter, workdir, "say hi")
    adapter.cancel()
    assert result.success
    assert not result.cancelled


def test_idle_timeout(make_adapter: Callable[[], AgentAdapter], workdir: Path) -> None:
    """An agent that goes silent for the idle timeout fails with TIMEOUT."""
    result = run(make_adapter(), workdir, "[scenario:stall] go", idle_timeout_s=0.5)
    assert result.error_code == ErrorCode.TIMEOUT
    assert not result.cancelled


def test_wall_clock_timeout(make_adapter: Callable[[], AgentAdapter], workdir: Path) -> None:
    """An agent still busy at the request's time limit fails with TIMEOUT."""
    result = run(make_adapter(), workdir, "[scenario:stall] go", timeout_s=1.0)
    assert result.error_code == ErrorCode.TIMEOUT


def test_one_run_per_adapter(make_adapter: Callable[[], AgentAdapter], workdir: Path) -> None:
    """An adapter instance refuses a second run."""
    adapter = make_adapter()
    run(adapter, workdir, "say hi")
    with pytest.raises(RuntimeError, match="one per run"):
        run(adapter, workdir, "again")


def test_capabilities_and_availability(make_adapter: Callable[[], AgentAdapter]) -> None:
    """Every adapter reports cancel support and is available against its stand-in."""
    adapter = make_adapter()
    assert adapter.capabilities().cancel
    check = adapter.check_available(timeout_s=5.0)
    assert check.ok, check.detail


def test_opencode_refuses_allowed_tools(settings: Settings, workdir: Path) -> None:
    """OpenCode cannot restrict tools to a list, so a request that asks for it is INVALID_SPEC."""
    adapter = registry.create("opencode", settings)
    request = AgentRequest(prompt="hi", cwd=workdir, allowed_tools=("Read",))
    with pytest.raises(errors.InvalidSpec) as caught:
        adapter.run(request, Recorder())
    assert caught.value.field == "allowed_tools"


def test_opencode_owns_a_server_when_no_url(
    settings: Settings, workdir: Path, tmp_path: Path
) -> None:
    """Without a URL the OpenCode adapter starts `opencode serve` with a password, runs the session
    on it and stops it afterwards."""
    script = Path(__file__).with_name("fake_opencode.py")
    binary = tmp_path / "opencode"
    binary.write_text(f'#!/bin/sh\nexec {sys.executable} {script} "$@"\n')
    binary.chmod(0o755)
    adapter = registry.create("opencode", settings.with_overrides(opencode_bin=str(binary)))
    assert adapter.check_available(5.0).ok
    result = adapter.run(AgentRequest(prompt="say hi", cwd=workdir), Recorder())
    assert result.success, result
    assert result.cost_usd == 0.0042
    assert (result.input_tokens, result.output_tokens) == (300, 25)
    assert not [pid for pid in processes_running(str(script))]


def processes_running(marker: str) -> list[int]:
    """Live processes whose command line mentions `marker`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker in cmdline.read_bytes().decode(errors="replace"):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue  # the process ended while we looked
    return found

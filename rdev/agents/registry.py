"""The provider registry: names to adapter factories, the default provider, and availability.

Providers register in this order: `claude` (the default), `opencode`, `claudebox`, `fake`.
`Settings.agent` (RDEV_AGENT) picks another default. The worker calls `create(name, settings)` once
per run (an adapter serves one run) and `available(settings)` at start to advertise what it can run.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from rdev import errors
from rdev.agents import claude_code, claudebox, fake, opencode
from rdev.agents.base import AgentAdapter
from rdev.config import Settings

Factory = Callable[[Settings], AgentAdapter]

_FACTORIES: dict[str, Factory] = {}


def register(name: str, factory: Factory) -> None:
    """Register a provider; the first one registered is the default."""
    if name in _FACTORIES:
        raise ValueError(f"agent provider {name!r} is already registered")
    _FACTORIES[name] = factory


def names() -> list[str]:
    """Registered provider names, the built-in default first."""
    return list(_FACTORIES)


def default_name(settings: Settings) -> str:
    """RDEV_AGENT when set, else the first registered provider."""
    return settings.agent or names()[0]


def resolve(name: str | None, settings: Settings) -> str:
    """The provider a request with `agent: name` runs on; unknown names are INVALID_SPEC."""
    chosen = name or default_name(settings)
    if chosen not in _FACTORIES:
        raise errors.InvalidSpec(
            f"unknown agent provider {chosen!r} (known: {', '.join(names())})", field="agent"
        )
    return chosen


def create(name: str | None, settings: Settings) -> AgentAdapter:
    """A fresh adapter for one run of provider `name` (None: the default provider)."""
    return _FACTORIES[resolve(name, settings)](settings)


def available(settings: Settings, timeout_s: float = 5.0) -> list[str]:
    """The providers whose availability check passes, checked in parallel within `timeout_s`."""
    providers = names()
    with ThreadPoolExecutor(max_workers=len(providers)) as pool:
        checks = pool.map(lambda n: create(n, settings).check_available(timeout_s), providers)
        return [name for name, check in zip(providers, checks, strict=True) if check.ok]


def _register_builtins() -> None:

    register(claude_code.ClaudeCodeAdapter.name, claude_code.ClaudeCodeAdapter)
    register(opencode.OpenCodeAdapter.name, opencode.OpenCodeAdapter)
    register(claudebox.ClaudeboxAdapter.name, claudebox.ClaudeboxAdapter)
    register(fake.FakeAgentAdapter.name, fake.FakeAgentAdapter)


_register_builtins()

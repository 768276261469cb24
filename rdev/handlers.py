"""The registry of task types: each type's spec model and the handler a worker runs for it.

Built-in types (build, sdlc, test, deploy) register their specs here; their handlers register
from the modules in BUILTIN_HANDLER_MODULES. Deployments and tests add types of their own
through modules named in RDEV_HANDLER_MODULES, imported by both the API (to validate) and the
workers (to execute).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from rdev import errors, specs
from rdev.config import Settings

if TYPE_CHECKING:
    from rdev.context import TaskContext

Handler = Callable[["TaskContext"], dict[str, Any]]

BUILTIN_HANDLER_MODULES: tuple[str, ...] = ("rdev.execution.handlers",)


@dataclass(frozen=True)
class TaskType:
    """A kind of work: how its spec is validated and which function executes it."""

    name: str
    spec_model: type[BaseModel]
    handler: Handler | None = None
    side_effects: bool = False


_REGISTRY: dict[str, TaskType] = {
    name: TaskType(name, model, side_effects=(name == "deploy"))
    for name, model in specs.BUILTIN.items()
}


def register(
    name: str,
    spec_model: type[BaseModel] | None = None,
    handler: Handler | None = None,
    *,
    side_effects: bool | None = None,
) -> TaskType:
    """Add a task type, or attach a handler (or a new spec model) to an existing one."""
    known = _REGISTRY.get(name)
    if known is None:
        if spec_model is None:
            raise ValueError(f"a new task type {name!r} needs a spec model")
        known = TaskType(name, spec_model)
    changes: dict[str, Any] = {}
    if spec_model is not None:
        changes["spec_model"] = spec_model
    if handler is not None:
        changes["handler"] = handler
    if side_effects is not None:
        changes["side_effects"] = side_effects
    _REGISTRY[name] = replace(known, **changes)
    return _REGISTRY[name]


def get(name: str) -> TaskType:
    """The registered type called `name`; unknown types are an INVALID_SPEC error."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise errors.InvalidSpec(f"unknown task type {name!r} (known: {known})", "type") from None


def names() -> list[str]:
    """Every registered type name."""
    return sorted(_REGISTRY)


def validate_spec(type_name: str, spec: Any, settings: Settings) -> dict[str, Any]:
    """The spec as the type's model accepts it (defaults filled in), or `InvalidSpec`."""
    task_type = get(type_name)
    if not isinstance(spec, dict):
        raise errors.InvalidSpec("spec must be a JSON object", "spec")
    encoded = json.dumps(spec)
    if len(encoded) > settings.max_spec_bytes:
        raise errors.InvalidSpec(f"spec exceeds {settings.max_spec_bytes} bytes", "spec")
    prompt = spec.get("prompt")
    if isinstance(prompt, str) and len(prompt.encode()) > settings.max_prompt_bytes:
        raise errors.InvalidSpec(
            f"prompt exceeds {settings.max_prompt_bytes} bytes", "spec.prompt"
        )
    try:
        # JSON-mode strictness: "5" is not an int, but "AGENT_ERROR" may name an enum member.
        model = task_type.spec_model.model_validate_json(encoded, strict=True)
    except ValidationError as exc:
        raise spec_error(exc) from None
    return model.model_dump(mode="json", exclude_none=True)


def spec_error(exc: ValidationError, prefix: str = "spec") -> errors.InvalidSpec:
    """The first validation problem as an INVALID_SPEC error naming its field."""
    first = exc.errors()[0]
    field = ".".join([*([prefix] if prefix else []), *(str(part) for part in first["loc"])])
    message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
    return errors.InvalidSpec(f"{field}: {message}", field)


def load_plugins(settings: Settings) -> None:
    """Import the built-in handlers and every module named in RDEV_HANDLER_MODULES."""
    for module in (*BUILTIN_HANDLER_MODULES, *settings.handler_module_names):
        importlib.import_module(module)

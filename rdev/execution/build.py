"""The `build` and `sdlc` handlers: change a repository (with an agent or the SDLC CLI), then
commit and push what changed.

The agent adapter's process is tied to the attempt: when the attempt is told to stop (cancel,
time limit, fencing, shutdown) `adapter.cancel()` runs at once from the heartbeat thread, which
ends the agent's whole process tree; the workspace goes when the handler unwinds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rdev import errors
from rdev.agents import registry
from rdev.agents.base import AgentEvent, AgentRequest, AgentResult
from rdev.codes import ErrorCode
from rdev.context import TaskContext
from rdev.execution.steps import Steps

MAX_TEXT_CHARS = 8000
SUBJECT_CHARS = 60


def build(ctx: TaskContext) -> dict[str, Any]:
    """Clone, run the agent on the prompt, commit and push; the run's result."""
    steps = Steps(ctx)
    with steps.workspace() as workspace:
        repo = steps.clone(workspace)
        agent = run_agent(steps, repo.path)
        message = f"rdev build: {_subject(ctx.spec['prompt'])}\n\nTask: {ctx.task_id}\n"
        published = steps.publish(repo, message)
    return {
        **published,
        "agent": agent["agent"],
        "session_id": agent["result"].session_id,
        "text": steps.redactor.text(agent["result"].text[-MAX_TEXT_CHARS:]),
        "turns": agent["result"].turns,
        "cost_usd": agent["result"].cost_usd,
        "input_tokens": agent["result"].input_tokens,
        "output_tokens": agent["result"].output_tokens,
        "agent_duration_s": agent["result"].duration_s,
        "duration_s": steps.elapsed_s(),
    }


def sdlc(ctx: TaskContext) -> dict[str, Any]:
    """Clone, run `<RDEV_SDLC_BIN> command args...` (no shell), commit and push."""
    steps = Steps(ctx)
    spec = ctx.spec
    with steps.workspace() as workspace:
        repo = steps.clone(workspace)
        argv = [ctx.settings.sdlc_bin, spec["command"], *spec.get("args", [])]
        done = steps.command(argv, repo.path, ctx.remaining_s())
        if not done.ok:
            raise errors.TaskFailure(
                ErrorCode.AGENT_ERROR,
                f"sdlc {spec['command']} exited {done.exit_code}: "
                f"{steps.tail(done.output)[-1500:]}",
                details={"step": "sdlc", "exit_code": done.exit_code},
            )
        message = f"rdev sdlc: {spec['command']}\n\nTask: {ctx.task_id}\n"
        published = steps.publish(repo, message)
    return {**published, "command": spec["command"], "args": spec.get("args", []),
            "exit_code": done.exit_code, "output_tail": steps.tail(done.output),
            "duration_s": steps.elapsed_s()}


def run_agent(steps: Steps, cwd: Path) -> dict[str, Any]:
    """Run the spec's agent in `cwd`, streaming its events; the provider name and result."""
    ctx, spec = steps.ctx, steps.ctx.spec
    name = registry.resolve(spec.get("agent"), ctx.settings)
    adapter = registry.create(name, ctx.settings)
    ctx.on_stop(adapter.cancel)
    ctx.check()
    request = AgentRequest(
        prompt=spec["prompt"], cwd=cwd, model=spec.get("model"), max_turns=spec.get("max_turns"),
        session_id=spec.get("session_id"), timeout_s=max(1.0, ctx.remaining_s()),
    )
    steps.emit("agent_started", {"agent": name, "model": spec.get("model"),
                                 "max_turns": spec.get("max_turns")})

    def on_event(event: AgentEvent) -> None:
        steps.emit(f"agent.{event.kind}", event.data)

    result = adapter.run(request, on_event)
    ctx.check()
    _raise_for(steps, result)
    return {"agent": name, "result": result}


def _raise_for(steps: Steps, result: AgentResult) -> None:
    if result.cancelled:
        raise errors.TaskFailure(ErrorCode.AGENT_ERROR, "the agent stopped without being asked")
    if result.error_code is not None:
        message = steps.redactor.text(result.error_message or str(result.error_code))
        details = {"error_kind": result.error_kind, "session_id": result.session_id}
        raise errors.TaskFailure(result.error_code, message, result.retry_after_s, details)


def _subject(prompt: str) -> str:
    first = prompt.strip().splitlines()[0] if prompt.strip() else "changes"
    return first if len(first) <= SUBJECT_CHARS else first[: SUBJECT_CHARS - 3] + "..."

"""The `test` and `deploy` handlers: run a repository's tests, roll out an image with kubectl.

A test run that fails is a completed task whose result says `passed: false`: the task did its
job (it ran the tests). A command that cannot start, or a rollout that fails, is a failure.
"""

from __future__ import annotations

from typing import Any

from rdev import errors
from rdev.codes import ErrorCode
from rdev.context import TaskContext
from rdev.execution import commands
from rdev.execution.steps import Steps

KUBECTL_NOT_FOUND_HINTS = ("notfound", "not found")


def run_tests(ctx: TaskContext) -> dict[str, Any]:
    """Clone, run the spec's test command (an argument list); passed or failed with the tail."""
    steps = Steps(ctx)
    argv = list(ctx.spec["command"])
    with steps.workspace() as workspace:
        repo = steps.clone(workspace)
        done = steps.command(argv, repo.path, ctx.remaining_s())
    if done.exit_code == commands.NOT_FOUND and not done.timed_out:
        raise errors.InvalidSpec(f"test command cannot run: {done.output[-500:]}", "spec.command")
    return {"passed": done.ok, "exit_code": done.exit_code, "command": argv,
            "output_tail": steps.tail(done.output), "branch": repo.branch, "sha": repo.base_sha,
            "command_duration_s": done.duration_s, "duration_s": steps.elapsed_s()}


def deploy(ctx: TaskContext) -> dict[str, Any]:
    """`kubectl set image` on the deployment, then `kubectl rollout status` until it is done."""
    steps = Steps(ctx)
    spec, settings = ctx.spec, ctx.settings
    namespace = spec.get("namespace") or settings.kubectl_namespace
    target = f"deployment/{spec['deployment']}"
    base = kubectl_base(ctx, namespace)
    container = spec.get("container") or "*"
    cwd = settings.data_dir.resolve()
    cwd.mkdir(parents=True, exist_ok=True)
    image = f"{container}={spec['image']}"
    set_image = steps.command([*base, "set", "image", target, image], cwd, ctx.remaining_s())
    _raise_for_kubectl("set image", set_image, steps)
    timeout = max(1, int(min(settings.rollout_timeout_s, ctx.remaining_s())))
    rollout = steps.command([*base, "rollout", "status", target, f"--timeout={timeout}s"],
                            cwd, timeout + 10)
    _raise_for_kubectl("rollout status", rollout, steps)
    return {"deployment": spec["deployment"], "namespace": namespace,
            "container": spec.get("container"), "image": spec["image"],
            "rollout_status": "complete", "exit_code": rollout.exit_code,
            "output_tail": steps.tail(set_image.output + rollout.output),
            "duration_s": steps.elapsed_s()}


def kubectl_base(ctx: TaskContext, namespace: str | None) -> list[str]:
    """kubectl with the configured context and the namespace."""
    argv = [ctx.settings.kubectl_bin]
    if ctx.settings.kubectl_context:
        argv += ["--context", ctx.settings.kubectl_context]
    if namespace:
        argv += ["--namespace", namespace]
    return argv


def _raise_for_kubectl(step: str, done: commands.Completed, steps: Steps) -> None:
    if done.ok:
        return
    tail = steps.tail(done.output)[-1500:]
    if done.timed_out:
        raise errors.TaskFailure(ErrorCode.TIMEOUT, f"kubectl {step} timed out: {tail}")
    code = ErrorCode.AGENT_ERROR
    if step == "set image" and any(h in tail.lower() for h in KUBECTL_NOT_FOUND_HINTS):
        code = ErrorCode.INVALID_SPEC
    raise errors.TaskFailure(code, f"kubectl {step} exited {done.exit_code}: {tail}",
                             details={"step": step, "exit_code": done.exit_code})

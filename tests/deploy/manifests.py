"""What the deploy tests read: the rendered chart, the compose file, rdev's entry points."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "rdev"
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
HELM_PYTHON = ROOT / ".venv-helm" / "bin" / "python"
HADOLINT = ROOT / ".venv-helm" / "bin" / "hadolint"
DOCKER_COMPOSE = ROOT / ".venv-helm" / "bin" / "docker-compose"
HELM_TOOL = Path(__file__).with_name("helm_tool.py")

#: Oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schema we have.
KUBE_VERSIONS = ("1.29.0", "1.37.0")

#: The Celery programs rdev's image runs (`celery -A rdev <program>`).
CELERY_PROGRAMS = {"worker", "beat", "flower"}

#: `rdev` subcommands the deployment runs, as named in the deployment contract.
RDEV_COMMANDS = {("api",), ("db", "upgrade"), ("healthcheck",), ("claudebox",)}

#: Values that switch every optional part of the chart on, with recognisable secrets.
SECRETS = {
    "callbackSecret": "cb-secret-value-1",
    "opencodePassword": "oc-secret-value-2",
    "anthropicApiKey": "sk-ant-secret-value-3",
    "databaseUrl": "postgresql+psycopg2://rdev:db-secret-value-4@pg.example:5432/rdev",
    "brokerUrl": "redis://:redis-secret-value-5@redis.example:6379/0",
}
FLOWER_AUTH = "ops:flower-secret-value-6"
ALL_ON: dict[str, Any] = {
    "secrets": SECRETS,
    "rdev": {"agent": "claude", "extraEnv": {"RDEV_REDISPATCH_AFTER_S": "300"}},
    "imagePullSecrets": [{"name": "registry"}],
    "api": {
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "hosts": [{"host": "rdev.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}],
            "tls": [{"secretName": "rdev-tls", "hosts": ["rdev.example.com"]}],
        },
    },
    "worker": {"autoscaling": {"enabled": True}, "podDisruptionBudget": {"enabled": True}},
    "flower": {
        "enabled": True,
        "auth": {"mode": "basic", "basicAuth": FLOWER_AUTH},
        "persistence": {"enabled": True},
        "ingress": {
            "enabled": True,
            "hosts": [
                {"host": "flower.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]},
            ],
        },
    },
    "claudebox": {"enabled": True, "credentials": {"enabled": True, "storageClass": "rwx"}},
    "deployTasks": {"enabled": True, "namespaces": ["apps", "staging"]},
}


def require_helm() -> None:
    """The chart tests need .venv-helm (.ci/setup.d/30-helm.sh): skip locally, fail in CI."""
    if HELM_PYTHON.exists():
        return
    message = f"{HELM_PYTHON} is missing: run .ci/setup.d/30-helm.sh"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@functools.cache
def _render(values_json: str, kube_version: str) -> dict[str, Any]:
    result = subprocess.run(
        [str(HELM_PYTHON), str(HELM_TOOL), str(CHART), kube_version],
        input=values_json, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def render(
    values: dict[str, Any] | None = None, kube_version: str = KUBE_VERSIONS[0]
) -> dict[str, Any]:
    """Lint and render the chart with these values: {"lint", "error", "manifests", "invalid"}."""
    require_helm()
    return _render(json.dumps(values or {}, sort_keys=True), kube_version)


def objects(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The Kubernetes objects of a successful render."""
    assert report["error"] is None, report["error"]
    found = []
    for path, text in sorted(report["manifests"].items()):
        if path.endswith(".yaml"):
            found.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return found


def find(report: dict[str, Any], kind: str, suffix: str = "") -> list[dict[str, Any]]:
    """Objects of one kind, optionally only those whose name ends with `suffix`."""
    return [
        o for o in objects(report)
        if o["kind"] == kind and o["metadata"]["name"].endswith(suffix)
    ]


def one(report: dict[str, Any], kind: str, suffix: str) -> dict[str, Any]:
    """The single object of `kind` whose name ends with `suffix`."""
    matches = find(report, kind, suffix)
    assert len(matches) == 1, [o["metadata"]["name"] for o in find(report, kind)]
    return matches[0]


def pod_specs(report: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(workload name, pod spec) of every Deployment, Job and (helm test) Pod."""
    for obj in objects(report):
        if obj["kind"] in {"Deployment", "Job"}:
            yield obj["metadata"]["name"], obj["spec"]["template"]["spec"]
        elif obj["kind"] == "Pod":
            yield obj["metadata"]["name"], obj["spec"]


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """Main containers and init containers (claudebox is a native sidecar among the latter)."""
    return [*pod.get("initContainers", []), *pod["containers"]]


def compose() -> dict[str, Any]:
    """docker-compose.yml as YAML (merge keys resolved)."""
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)((?::?[-?+])([^}]*))?\}")


def compose_variables(text: str) -> list[tuple[str, str | None]]:
    """Every ${VAR} or ${VAR:-default} in compose text, as (name, default or None)."""
    found = []
    for match in _VARIABLE.finditer(text.replace("$$", "")):
        operator = match.group(2) or ""
        default = match.group(3) if operator.lstrip(":").startswith("-") else None
        found.append((match.group(1), default))
    return found


def expand(value: str, env: dict[str, str] | None = None) -> str:
    """Interpolate ${VAR:-default} like compose does, from `env` or the default."""
    env = env or {}

    def substitute(match: re.Match[str]) -> str:
        name, operator, default = match.group(1), match.group(2) or "", match.group(3) or ""
        if env.get(name):
            return env[name]
        return default if operator.lstrip(":").startswith("-") else ""

    return _VARIABLE.sub(substitute, value).replace("$$", "$")


@functools.cache
def _rdev_cli_commands() -> frozenset[tuple[str, ...]]:
    import click

    from rdev import cli

    paths: set[tuple[str, ...]] = set()

    def walk(command: click.Command, prefix: tuple[str, ...]) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, (*prefix, name))
        else:
            paths.add(prefix)

    walk(cli.main, ())
    return frozenset(paths)


def command_problem(argv: list[str]) -> str | None:
    """Why argv is not one of rdev's entry points, or None when it is.

    `rdev ...` must be a command of rdev's click CLI that the deployment contract names, and
    `celery ...` must be `celery -A rdev worker|beat|flower|control`.
    """
    if not argv:
        return "empty command"
    if argv[0] == "rdev":
        words = tuple(word for word in argv[1:] if not word.startswith("-"))
        known = [path for path in _rdev_cli_commands() if words[: len(path)] == path]
        if not known:
            return f"`rdev {' '.join(words)}` is not a command of rdev.cli"
        if not any(words[: len(path)] == path for path in RDEV_COMMANDS):
            return f"`rdev {' '.join(words)}` is not a deployment entry point"
        return None
    if argv[0] == "celery":
        if argv[1:3] != ["-A", "rdev"]:
            return f"celery must run the rdev app (-A rdev): {argv}"
        if len(argv) < 4 or argv[3] not in {*CELERY_PROGRAMS, "control"}:
            return f"unknown celery program: {argv}"
        return None
    return f"not an rdev or celery entry point: {argv}"

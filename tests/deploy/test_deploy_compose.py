"""docker-compose.yml, .env.example and the Dockerfile agree with each other and with rdev."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest

from tests.deploy.manifests import (
    COMPOSE,
    DOCKER_COMPOSE,
    ENV_EXAMPLE,
    HADOLINT,
    ROOT,
    command_problem,
    compose,
    compose_variables,
    expand,
    require_helm,
)

RDEV_SERVICES = {"migrate", "api", "worker", "beat", "flower"}
LONG_RUNNING = {"postgres", "redis", "api", "worker", "beat", "flower"}


def _env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def _command(service: dict[str, Any]) -> list[str]:
    return [expand(word) for word in service["command"]]


def _duration_s(value: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", value):
        total += float(number) * units[unit]
    return total


def _resolved(*env_file: str) -> dict[str, Any]:
    """The compose model as docker compose itself resolves it (no Docker engine needed)."""
    require_helm()
    result = subprocess.run(
        [str(DOCKER_COMPOSE), "-f", str(COMPOSE), *env_file, "config", "--format", "json"],
        capture_output=True, text=True, timeout=60, check=False, cwd="/",
    )
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model


@pytest.mark.parametrize("env_file", [["--env-file", "/dev/null"],
                                      ["--env-file", str(ENV_EXAMPLE)]],
                         ids=["defaults", "env-example"])
def test_docker_compose_accepts_the_file(env_file: list[str]) -> None:
    """docker compose validates the file and resolves its commands as this suite reads them."""
    resolved = _resolved(*env_file)["services"]
    ours = compose()["services"]
    assert set(resolved) == set(ours)
    env = _env_example() if env_file[1] == str(ENV_EXAMPLE) else {}
    for name, service in ours.items():
        if "command" in service:
            assert resolved[name]["command"] == [expand(w, env) for w in service["command"]], name
        for variable, value in service.get("environment", {}).items():
            assert (resolved[name]["environment"][variable] or "") == expand(value, env), variable


def test_compose_services_and_dependencies() -> None:
    """Every role is there, depends only on real services, and starts after the migration."""
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", *RDEV_SERVICES}
    for name, service in services.items():
        for target, rule in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on missing service {target}"
            assert target != name
            assert rule["condition"] in {
                "service_started", "service_healthy", "service_completed_successfully"}
    for name in RDEV_SERVICES - {"migrate"}:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        assert "container_name" not in services[name], "a fixed name prevents --scale"
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"
    for name in RDEV_SERVICES:
        assert services[name]["image"] == services["api"]["image"], "one image for every role"
    worker_ports = services["worker"].get("ports", [])
    assert worker_ports == [], "published ports would prevent --scale worker=N"


def test_compose_commands_are_rdev_entry_points() -> None:
    """Every rdev service runs a real `rdev` command or `celery -A rdev` program."""
    services = compose()["services"]
    programs = {}
    for name in RDEV_SERVICES:
        argv = _command(services[name])
        assert command_problem(argv) is None, (name, command_problem(argv))
        programs[name] = argv[3] if argv[0] == "celery" else " ".join(argv[1:3])
    assert programs == {
        "migrate": "db upgrade", "api": "api --host", "worker": "worker", "beat": "beat",
        "flower": "flower",
    }


def test_compose_health_checks_call_real_checks() -> None:
    """Each long-running service has a health check that exercises the service itself."""
    services = compose()["services"]
    tests = {name: " ".join(services[name]["healthcheck"]["test"]) for name in LONG_RUNNING}
    assert "pg_isready" in tests["postgres"]
    assert "redis-cli ping" in tests["redis"]
    api_port = _command(services["api"])[_command(services["api"]).index("--port") + 1]
    assert f"http://127.0.0.1:{api_port}/readyz" in tests["api"]
    assert tests["worker"].endswith("rdev healthcheck --worker")
    assert tests["beat"].endswith("rdev healthcheck")
    flower_port = re.search(r"--port=(\d+)", " ".join(_command(services["flower"])))
    assert flower_port
    assert f"http://127.0.0.1:{flower_port.group(1)}/healthcheck" in tests["flower"]
    for name in ("worker", "beat"):
        argv = services[name]["healthcheck"]["test"][1:]
        assert command_problem(argv) is None, command_problem(argv)


def test_compose_variables_have_defaults_or_are_documented() -> None:
    """Every ${VAR} has a default or a .env.example entry; .env.example lists only used ones."""
    text = COMPOSE.read_text()
    documented = _env_example()
    used = compose_variables(text)
    assert used
    for name, default in used:
        assert default is not None or name in documented, f"${{{name}}} has no default"
    stale = set(documented) - {name for name, _ in used}
    assert not stale, f".env.example documents unused variables: {sorted(stale)}"


def test_compose_rdev_environment_is_known_to_rdev() -> None:
    """Each RDEV_* variable compose passes is a setting rdev reads (rdev refuses unknown ones)."""
    from rdev.config import PREFIX, Settings

    known = {PREFIX + name.upper() for name in Settings.model_fields}
    for service in RDEV_SERVICES:
        for name, value in compose()["services"][service]["environment"].items():
            if name.startswith(PREFIX) and expand(value):
                assert name in known, f"{service}: {name} is not a setting of rdev.config"


def test_compose_secrets_reach_only_the_services_that_use_them() -> None:
    """Agent credentials go to the worker only, and Flower gets no database URL."""
    services = compose()["services"]
    holders: dict[str, set[str]] = {}
    for name in RDEV_SERVICES:
        for variable in services[name]["environment"]:
            holders.setdefault(variable, set()).add(name)
    assert holders["ANTHROPIC_API_KEY"] == {"worker"}
    assert holders["RDEV_OPENCODE_PASSWORD"] == {"worker"}
    assert holders["RDEV_DATABASE_URL"] == RDEV_SERVICES - {"flower"}
    assert holders["RDEV_BROKER_URL"] == RDEV_SERVICES


def test_compose_worker_gets_time_to_finish_tasks() -> None:
    """The worker's stop grace period exceeds the task timeout: stopping is a warm shutdown."""
    worker = compose()["services"]["worker"]
    for env in ({}, _env_example()):
        timeout = int(expand(worker["environment"]["RDEV_TASK_TIMEOUT_S"], env))
        assert _duration_s(expand(worker["stop_grace_period"], env)) > timeout


def test_compose_publishes_ports_on_loopback_only() -> None:
    """The laptop stack publishes the API and Flower on 127.0.0.1 only."""
    services = compose()["services"]
    published = [expand(port) for s in services.values() for port in s.get("ports", [])]
    assert published
    for port in published:
        assert port.startswith("127.0.0.1:"), port


@pytest.mark.parametrize("needed", ["pyproject.toml", "README.md", "rdev/", "package.json",
                                    "package-lock.json"])
def test_dockerignore_keeps_what_the_build_copies(needed: str) -> None:
    """The build context keeps every file the Dockerfile copies."""
    assert f"!{needed}" in (ROOT / ".dockerignore").read_text().split()


def test_dockerfile_builds_one_non_root_image_for_every_role() -> None:
    """The Dockerfile is multi-stage and slim, runs as non-root, and makes the agents optional."""
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, flags=re.MULTILINE)
    assert len(stages) >= 3
    assert "slim" in stages[-1][0]
    user = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert user, "no USER"
    assert user[-1].split(":")[0] not in {"0", "root"}
    assert re.search(r"^ARG INSTALL_AGENTS=", text, flags=re.MULTILINE)
    assert "FROM agents-${INSTALL_AGENTS}" in text
    assert "npm ci" in text
    assert re.search(r'^ENTRYPOINT \["tini", "--"\]', text, flags=re.MULTILINE)


def test_dockerfile_passes_hadolint() -> None:
    """hadolint finds nothing in the Dockerfile (ignores are commented where they are made)."""
    require_helm()
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

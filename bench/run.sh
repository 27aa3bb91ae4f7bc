#!/usr/bin/env bash
# Runs the side-by-side benchmark (see bench/README.md). Arguments go to bench/run.py:
#   bench/run.sh --quick --only temporal      # smoke run, Temporal only
#   bench/run.sh --latest                     # full matrix, both servers, 2 repetitions
#   bench/run.sh --store postgres --workloads activity/1,activity/32   # both on one PostgreSQL
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BENCH_VENV:-$ROOT/bench/.venv}"
if [ ! -x "$VENV/bin/python" ] || [ ! -x "$ROOT/bench/driver/bench-driver" ] || [ ! -x "$ROOT/bench/fsync/fsync-probe" ]; then
  echo "bench deps missing: run scripts/install-bench-deps.sh" >&2
  exit 1
fi
# Rebuild the driver if its sources are newer than the binary.
if [ -n "$(find "$ROOT/bench/driver" -name '*.go' -newer "$ROOT/bench/driver/bench-driver" 2>/dev/null)" ]; then
  (cd "$ROOT/bench/driver" && go build -trimpath -o bench-driver .)
fi
exec "$VENV/bin/python" "$ROOT/bench/run.py" "$@"

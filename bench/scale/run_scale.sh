#!/usr/bin/env bash
# The scale benchmark (bench/scale/README.md). Arguments go to bench/scale/run_scale.py:
#   bench/scale/run_scale.sh --sizes 10000,100000 --stores sqlite
#   SUNDIAL_BIN=path/to/sundial bench/scale/run_scale.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ ! -x "$ROOT/bench/driver/bench-driver" ]; then
  echo "bench/driver/bench-driver missing: run scripts/install-bench-deps.sh" >&2
  exit 1
fi
# Rebuild the driver if its sources are newer than the binary.
if [ -n "$(find "$ROOT/bench/driver" -name '*.go' -newer "$ROOT/bench/driver/bench-driver" 2>/dev/null)" ]; then
  (cd "$ROOT/bench/driver" && go build -trimpath -o bench-driver .)
fi
exec python3 "$ROOT/bench/scale/run_scale.py" "$@"

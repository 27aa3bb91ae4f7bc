#!/usr/bin/env bash
# Runs every end-to-end suite against SUNDIAL_TEST_TARGET (default: sundial, the binary at
# SUNDIAL_BIN or target/release/sundial; "temporal" runs them against Temporal's dev server).
#
#   scripts/test-e2e.sh                 # all suites
#   scripts/test-e2e.sh python go       # a subset: python go typescript java differential crash cli
#   scripts/test-e2e.sh outage          # not in the default list: PostgreSQL stopped under load
#                                       # (needs the SUNDIAL_PG_* of scripts/postgres.sh start)
#
# SUNDIAL_TEST_STORE=postgres|mysql runs the sundial servers of the python, go, crash, cli and
# differential suites on databases of their own (each set up with `sundial schema`, then
# `sundial server start --config-file`) instead of SQLite; it needs the variables of
# `scripts/postgres.sh start` or `scripts/mariadb.sh start`. (typescript and java: SQLite.)
#
# Installs pinned test dependencies first (scripts/install-test-deps.sh). Exits non-zero if any
# suite fails, and prints each runner's closing line plus a summary.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export SUNDIAL_TEST_TARGET="${SUNDIAL_TEST_TARGET:-sundial}"
if [ "$SUNDIAL_TEST_TARGET" = sundial ]; then
  bin="${SUNDIAL_BIN:-target/release/sundial}"
  case "$bin" in /*) ;; *) bin="$ROOT/$bin" ;; esac
  if [ ! -x "$bin" ]; then
    echo "sundial binary not found at $bin (build it with cargo build --release, or set SUNDIAL_BIN)" >&2
    exit 2
  fi
  export SUNDIAL_BIN="$bin"
  case "${SUNDIAL_TEST_STORE:-sqlite}" in
    sqlite) ;;
    postgres) [ -n "${SUNDIAL_PG_HOST:-}" ] || { echo "SUNDIAL_TEST_STORE=postgres needs SUNDIAL_PG_* (eval \"\$(bash scripts/postgres.sh start DIR)\")" >&2; exit 2; } ;;
    mysql) [ -n "${SUNDIAL_MYSQL_HOST:-}" ] || { echo "SUNDIAL_TEST_STORE=mysql needs SUNDIAL_MYSQL_* (eval \"\$(bash scripts/mariadb.sh start DIR)\")" >&2; exit 2; } ;;
    *) echo "unknown SUNDIAL_TEST_STORE ${SUNDIAL_TEST_STORE} (sqlite, postgres or mysql)" >&2; exit 2 ;;
  esac
fi
[ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"

scripts/install-test-deps.sh >/dev/null || { echo "installing test dependencies failed" >&2; exit 2; }

PY="$ROOT/.venv/bin/python"
suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(python go typescript java differential crash cli)
failed=()
LOGDIR="$(mktemp -d)"

run() { # name, dir, command...
  local name=$1 dir=$2; shift 2
  local store=""
  if [ -n "${SUNDIAL_TEST_STORE:-}" ] && [ "$SUNDIAL_TEST_TARGET" = sundial ]; then
    case "$name" in
      typescript|java) store=", store: sqlite (this suite ignores SUNDIAL_TEST_STORE)" ;;
      outage) store=", store: postgres (this suite ignores SUNDIAL_TEST_STORE)" ;;
      *) store=", store: $SUNDIAL_TEST_STORE" ;;
    esac
  fi
  echo "=== $name suite (target: $SUNDIAL_TEST_TARGET$store)"
  (cd "$dir" && "$@") 2>&1 | tee "$LOGDIR/$name.log" | grep -E '^(FAILED|ERROR|--- FAIL|FAIL|ok |PASS$)'
  local rc=${PIPESTATUS[0]}
  # the runner's closing line
  if [ "$name" = go ]; then
    :  # go test's closing line (ok/FAIL) is already printed above
  else
    grep -E '(passed|failed|error|no tests ran)' "$LOGDIR/$name.log" | tail -1
  fi
  if [ "$rc" -ne 0 ]; then failed+=("$name"); echo "=== $name: FAILED (log: $LOGDIR/$name.log)"; fi
}

for s in "${suites[@]}"; do
  case "$s" in
    python)       run python tests/sdk/python "$PY" -m pytest -q -rf ;;
    go)           run go tests/sdk/go go test -count=1 -v -timeout 20m ./... ;;
    differential) run differential tests/differential "$PY" -m pytest -q -rf ;;
    crash)        run crash tests/crash "$PY" -m pytest -q -rf -s ;;
    outage)       run outage tests/outage "$PY" -m pytest -q -rf -s ;;
    cli)          run cli tests/cli "$PY" -m pytest -q -rf ;;
    typescript)   run typescript tests/sdk/typescript npm test --silent ;;
    java)
      if bash scripts/install-java-deps.sh >"$LOGDIR/java-install.log" 2>&1; then
        run java tests/sdk/java mvn -B -q -o test
      else
        echo "=== java: installing its dependencies failed"; failed+=(java)
      fi ;;
    *) echo "unknown suite $s" >&2; failed+=("$s") ;;
  esac
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "e2e: failed suites: ${failed[*]}"
  exit 1
fi
echo "e2e: all suites passed (${suites[*]})"

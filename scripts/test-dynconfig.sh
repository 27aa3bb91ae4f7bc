#!/usr/bin/env bash
# Runs the dynamic-config tests: installs etcd and protoc when missing (scripts/install-etcd.sh),
# then runs the sundial-dynconfig and sundial-testkit test suites.
set -euo pipefail
cd "$(dirname "$0")/.."

etcd_bin=$(bash scripts/install-etcd.sh | tail -n1)
export SUNDIAL_ETCD_BIN="${SUNDIAL_ETCD_BIN:-$etcd_bin}"
echo "test-dynconfig: using etcd at $SUNDIAL_ETCD_BIN" >&2

cargo test -p sundial-dynconfig -p sundial-testkit "$@"

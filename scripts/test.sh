#!/usr/bin/env bash
# Runs every test Sundial has, installing what the tests need first. Used by CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "formatting and lints"
cargo fmt --all --check
cargo clippy --release --workspace --all-targets -- -D warnings

step "build the sundial binary"
cargo build --release -p sundial-server

for installer in scripts/install-test-deps.sh scripts/install-etcd.sh; do
    if [ -f "$installer" ]; then
        step "install: $installer"
        bash "$installer"
    fi
done

step "Rust unit and integration tests"
cargo test --release --workspace

if [ -f scripts/test-e2e.sh ]; then
    step "end-to-end suites (official SDKs, CLI, differential, crash)"
    SUNDIAL_BIN="$PWD/target/release/sundial" bash scripts/test-e2e.sh
fi

step "all test suites passed"

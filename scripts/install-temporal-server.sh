#!/usr/bin/env bash
# Builds Temporal Server and its SQL schema tool from the Go module proxy, for the benchmark's
# PostgreSQL mode (bench/run.sh --store postgres). Idempotent: skips the build when both
# binaries are already there at the wanted version.
#
#   scripts/install-temporal-server.sh            # -> bench/.bin/temporal-server, bench/.bin/temporal-sql-tool
#   TEMPORAL_SERVER_VERSION=v1.32.0 scripts/install-temporal-server.sh
#
# `go install` names the binaries after their package directories (`server`, `sql`); they are
# renamed to temporal-server and temporal-sql-tool. bench/.bin/ is git-ignored.
# The build takes several minutes on a 2-core machine.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${TEMPORAL_SERVER_VERSION:-v1.32.0}"
BIN="${TEMPORAL_SERVER_BIN_DIR:-$ROOT/bench/.bin}"
STAMP="$BIN/temporal-server.version"

if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; fi
command -v go >/dev/null || { echo "Go is needed to build Temporal Server" >&2; exit 1; }

if [ -x "$BIN/temporal-server" ] && [ -x "$BIN/temporal-sql-tool" ] \
   && [ "$(cat "$STAMP" 2>/dev/null)" = "$VERSION" ]; then
  echo "temporal-server $VERSION already built in $BIN"
  exit 0
fi

mkdir -p "$BIN"
tmp="$BIN/.build"
rm -rf "$tmp"
mkdir -p "$tmp"
# GOFLAGS from the environment (e.g. -mod=vendor) must not leak into a module-mode install.
GOBIN="$tmp" GOFLAGS=-buildvcs=false CGO_ENABLED=0 go install -trimpath \
  "go.temporal.io/server/cmd/server@$VERSION" \
  "go.temporal.io/server/cmd/tools/sql@$VERSION"
mv -f "$tmp/server" "$BIN/temporal-server"
mv -f "$tmp/sql" "$BIN/temporal-sql-tool"
rmdir "$tmp"
echo "$VERSION" > "$STAMP"
echo "temporal-server $VERSION built: $BIN/temporal-server, $BIN/temporal-sql-tool"

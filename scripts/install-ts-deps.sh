#!/usr/bin/env bash
# Installs the TypeScript SDK end-to-end suite's npm packages (tests/sdk/typescript), exactly as
# pinned by its package-lock.json. Needs Node >= 20.3 and npm.
# Idempotent: runs `npm ci` only when node_modules is missing or the lockfile changed since the
# last install (a stamp file in node_modules records the lockfile's hash).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/tests/sdk/typescript"
cd "$DIR"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
  fi
fi
command -v node >/dev/null 2>&1 || { echo "node not found (the TypeScript suite needs Node >= 20.3)" >&2; exit 1; }
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
  echo "node $(node --version) is too old: the Temporal TypeScript SDK needs Node >= 20.3" >&2
  exit 1
fi

STAMP=node_modules/.sundial-lock.sha
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -d node_modules ] || [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$STAMP"
fi
echo "typescript test dependencies installed"

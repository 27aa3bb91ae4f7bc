#!/usr/bin/env bash
# Builds the binary to deploy and benchmark: target/dist/sundial (the `dist` profile: fat LTO),
# linked with the functions a serving process executes packed together (see
# crates/sundial-server/build.rs). Steps: build; run the build under callgrind while the bench
# driver exercises it for a few seconds (start-up, GetSystemInfo, starts, activity, signal and
# timer workflows); write the names of the executed functions to target/dist/link-order.txt;
# relink with that order (cargo reruns the final link only). Without valgrind, or with
# --no-order, the binary is left unordered. Takes ~5-10 minutes from scratch.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ORDER="$ROOT/target/dist/link-order.txt"
BIN="$ROOT/target/dist/sundial"
DRIVER="$ROOT/bench/driver/bench-driver"

if [ "${1:-}" = "--no-order" ]; then
    SUNDIAL_LINK_ORDER= cargo build --profile dist -p sundial-server
    exit 0
fi
# Build with the order of the last trace, if any (the names it lists are those of the build
# it traced; most survive small code changes). The trace below then writes a fresh order, which
# differs a little from run to run, so the final relink (~3.5 minutes of LTO) runs every time.
if [ -f "$ORDER" ]; then export SUNDIAL_LINK_ORDER="$ORDER"; fi
cargo build --profile dist -p sundial-server

if ! command -v valgrind >/dev/null 2>&1; then
    echo "build-dist: valgrind not found; $BIN is not link-ordered" >&2
    exit 0
fi
if [ ! -x "$DRIVER" ]; then
    (cd "$ROOT/bench/driver" && go build -trimpath -o bench-driver .)
fi

WORK="$(mktemp -d)"
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" --dump-instr=no \
    --compress-strings=no --compress-pos=no --demangle=no \
    "$BIN" server start-dev --port "$PORT" --db-filename "$WORK/trace.db" >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 120); do
    "$DRIVER" ready -addr "127.0.0.1:$PORT" >/dev/null 2>&1 && break
    sleep 0.5
done
for workload in activity start signal timer; do
    # Only the trace matters here; a slow or failed workload still leaves one.
    "$DRIVER" run -addr "127.0.0.1:$PORT" -workload "$workload" -concurrency 2 -duration 3s -warmup 1s \
        >"$WORK/$workload.json" 2>"$WORK/$workload.log" \
        || { echo "build-dist: the $workload workload under callgrind reported errors:" >&2; tail -3 "$WORK/$workload.log" >&2; }
done
kill -INT "$SERVER"
wait "$SERVER" || true
python3 "$ROOT/scripts/link-order-from-callgrind.py" "$WORK/callgrind.out" "$BIN" >"$WORK/order.txt"
if [ ! -s "$WORK/order.txt" ]; then
    echo "build-dist: the trace named no functions of $BIN; left unordered" >&2
    exit 1
fi
if ! cmp -s "$WORK/order.txt" "$ORDER"; then
    mv "$WORK/order.txt" "$ORDER"
fi
export SUNDIAL_LINK_ORDER="$ORDER"
cargo build --profile dist -p sundial-server
echo "build-dist: $BIN, $(wc -l <"$ORDER") functions ordered first" >&2

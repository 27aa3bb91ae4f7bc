#!/usr/bin/env bash
# Builds and starts Sundial's all-in-one development server (embedded SQLite, namespace `default`,
# gRPC on 127.0.0.1:7233). Extra arguments go to `sundial server start-dev` (see README).
# The build needs protoc (the etcd client compiles its protos); it is installed when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v protoc >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "start-dev: installing protoc (Debian protobuf-compiler)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler >&2
    else
        echo "start-dev: protoc is needed to build; install Debian's protobuf-compiler" >&2
        exit 1
    fi
fi

exec cargo run --release -p sundial-server -- server start-dev "$@"

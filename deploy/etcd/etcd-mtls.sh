#!/usr/bin/env bash
# Starts a single-node etcd that requires client certificates (mutual TLS), using the
# files from gen-certs.sh. A sketch for trying the setup locally; run etcd under your
# usual supervisor in production.
#
#   deploy/etcd/etcd-mtls.sh CERT_DIR DATA_DIR [CLIENT_PORT]
set -euo pipefail
certs=${1:?usage: etcd-mtls.sh CERT_DIR DATA_DIR [CLIENT_PORT]}
data=${2:?usage: etcd-mtls.sh CERT_DIR DATA_DIR [CLIENT_PORT]}
port=${3:-2379}
peer=$((port + 1))
exec etcd --name sundial-dc --data-dir "$data" \
  --listen-client-urls "https://127.0.0.1:$port" \
  --advertise-client-urls "https://127.0.0.1:$port" \
  --listen-peer-urls "http://127.0.0.1:$peer" \
  --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "sundial-dc=http://127.0.0.1:$peer" \
  --client-cert-auth \
  --trusted-ca-file "$certs/ca.crt" \
  --cert-file "$certs/server.crt" \
  --key-file "$certs/server.key"

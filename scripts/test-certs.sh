#!/usr/bin/env bash
# Writes a throwaway certificate authority and certificates for TLS tests into DIR:
#   ca.pem                  the CA the tests trust
#   server.pem, server.key  the database server's, for 127.0.0.1 and localhost, from ca.pem
#   client.pem, client.key  a client certificate (CN sundial), from ca.pem
#   other-ca.pem            a CA that signed nothing here (a client trusting only it must fail)
# Usage: test-certs.sh DIR [OWNER]   (OWNER: the user the server runs as, to own the key)
set -euo pipefail
dir=${1:?directory}
owner=${2:-}
command -v openssl >/dev/null || { echo "openssl is needed for the TLS tests" >&2; exit 1; }
mkdir -p "$dir"
cd "$dir"
quiet() { "$@" >/dev/null 2>&1 || { "$@"; exit 1; }; }
quiet openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=sundial test CA" \
  -keyout ca.key -out ca.pem
quiet openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=unrelated test CA" \
  -keyout other-ca.key -out other-ca.pem
issue() { # name subject extensions
  quiet openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr"
  printf '%s\n' "$3" > "$1.ext"
  quiet openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.pem"
}
issue server "/CN=localhost" "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth"
issue client "/CN=sundial" "extendedKeyUsage=clientAuth"
chmod 600 server.key client.key ca.key other-ca.key
chmod 644 ./*.pem
if [ -n "$owner" ]; then chown "$owner" server.key; fi

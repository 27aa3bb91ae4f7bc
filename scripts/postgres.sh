#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests: installed from Debian's packages when missing, started
# on 127.0.0.1 on a free port in a temporary directory, as the `postgres` user when run as
# root (PostgreSQL refuses root), with durable settings (fsync and synchronous commit on) and
# password authentication.
#
#   eval "$(scripts/postgres.sh start DIR)"   # prints SUNDIAL_PG_* exports
#   scripts/postgres.sh stop DIR
#   scripts/postgres.sh pause DIR [fast|immediate]   # an outage: stops the server, keeps its data
#   scripts/postgres.sh resume DIR                   # starts it again, same port and settings
#
# pause uses pg_ctl -m fast (sessions ended, open transactions rolled back) unless told
# immediate (the server dies as in a crash and recovers from its WAL on resume).
#
# The superuser is `sundial`, password `sundial-test`.
set -euo pipefail

command=${1:?usage: postgres.sh start|stop|pause|resume|install DIR}

bin_dir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  echo "$dir"
}

install() {
  if [ -z "$(bin_dir)" ] || [ ! -x "$(bin_dir)/initdb" ]; then
    if command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
  fi
  [ -x "$(bin_dir)/initdb" ] || { echo "PostgreSQL is not installed and could not be" >&2; exit 1; }
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Starts the server of DIR on PORT (start and resume use the same settings).
server_start() { # dir port
  local dir=$1 port=$2
  as_owner "$(bin_dir)/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=on -c synchronous_commit=on -c full_page_writes=on -c max_connections=300 -c shared_buffers=128MB -c ssl=on -c ssl_cert_file=$dir/tls/server.pem -c ssl_key_file=$dir/tls/server.key -c ssl_ca_file=$dir/tls/ca.pem" \
    >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
}

case "$command" in
  install)
    install
    ;;
  start)
    dir=${2:?directory}
    install
    bin=$(bin_dir)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    printf '%s\n' sundial-test > "$dir/pwfile"
    if [ "$(id -u)" = 0 ]; then chown postgres "$dir/pwfile"; fi
    as_owner "$bin/initdb" -D "$dir/data" -U sundial --pwfile="$dir/pwfile" -A scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    # TLS is offered (not required) with a throwaway CA, for the TLS tests.
    bash "$(dirname "${BASH_SOURCE[0]}")/test-certs.sh" "$dir/tls" "$([ "$(id -u)" = 0 ] && echo postgres)"
    server_start "$dir" "$port"
    echo "$port" > "$dir/port"
    echo "export SUNDIAL_PG_HOST=127.0.0.1 SUNDIAL_PG_PORT=$port SUNDIAL_PG_USER=sundial SUNDIAL_PG_PASSWORD=sundial-test SUNDIAL_PG_DIR=$dir SUNDIAL_PG_TLS_DIR=$dir/tls"
    ;;
  stop)
    dir=${2:?directory}
    bin=$(bin_dir)
    [ -d "$dir/data" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    ;;
  pause)
    # The data directory and port stay for `resume`.
    dir=${2:?directory}
    mode=${3:-fast}
    case "$mode" in fast|immediate) ;; *) echo "unknown shutdown mode $mode (fast or immediate)" >&2; exit 2 ;; esac
    [ -d "$dir/data" ] && [ -f "$dir/port" ] || { echo "no server started in $dir" >&2; exit 1; }
    as_owner "$(bin_dir)/pg_ctl" -D "$dir/data" -m "$mode" -w -t 60 stop >/dev/null
    ;;
  resume)
    dir=${2:?directory}
    [ -d "$dir/data" ] && [ -f "$dir/port" ] || { echo "no server started in $dir" >&2; exit 1; }
    server_start "$dir" "$(cat "$dir/port")"
    ;;
  *)
    echo "usage: postgres.sh start|stop|install DIR, pause DIR [fast|immediate], resume DIR" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# A throwaway MariaDB (MySQL's dialect; MySQL 8 itself is not packaged by Debian) for the tests:
# installed from Debian's packages when missing, started on 127.0.0.1 on a free port in a
# temporary directory, as the `mysql` user when run as root, with durable settings (the redo log
# flushed and synced at every commit, doublewrite on).
#
#   eval "$(scripts/mariadb.sh start DIR)"   # prints SUNDIAL_MYSQL_* exports
#   scripts/mariadb.sh stop DIR
#
# The user with every privilege is `sundial`, password `sundial-test`, over TCP.
set -euo pipefail

command=${1:?usage: mariadb.sh start|stop|install DIR}

install() {
  if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
    if command -v apt-get >/dev/null 2>&1; then
      # The package's own service start is refused in a container; the tests start their own.
      apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >/dev/null 2>&1 || true
    fi
  fi
  [ -x /usr/sbin/mariadbd ] || { echo "MariaDB is not installed and could not be" >&2; exit 1; }
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u mysql -- "$@"; else "$@"; fi
}

case "$command" in
  install)
    install
    ;;
  start)
    dir=${2:?directory}
    install
    mkdir -p "$dir/data"
    if [ "$(id -u)" = 0 ]; then chown -R mysql "$dir"; fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # TLS is offered with a throwaway CA, for the TLS tests; the user sundial_tls may log in
    # only over TLS with a client certificate from that CA.
    bash "$(dirname "${BASH_SOURCE[0]}")/test-certs.sh" "$dir/tls" "$([ "$(id -u)" = 0 ] && echo mysql)"
    cat > "$dir/my.cnf" <<EOF
[mariadbd]
datadir=$dir/data
socket=$dir/mysqld.sock
pid-file=$dir/mysqld.pid
port=$port
bind-address=127.0.0.1
skip-name-resolve
innodb_flush_log_at_trx_commit=1
innodb_doublewrite=1
sync_binlog=1
innodb_buffer_pool_size=256M
max_connections=400
max_allowed_packet=64M
character-set-server=utf8mb4
collation-server=utf8mb4_bin
ssl_ca=$dir/tls/ca.pem
ssl_cert=$dir/tls/server.pem
ssl_key=$dir/tls/server.key
EOF
    if [ "$(id -u)" = 0 ]; then chown mysql "$dir/my.cnf"; fi
    as_owner mariadb-install-db --defaults-file="$dir/my.cnf" --auth-root-authentication-method=socket \
      --skip-test-db >"$dir/install.log" 2>&1 || { cat "$dir/install.log" >&2; exit 1; }
    as_owner /usr/sbin/mariadbd --defaults-file="$dir/my.cnf" >"$dir/server.log" 2>&1 &
    # The installing account logs in over the socket as itself (unix_socket authentication).
    if [ "$(id -u)" = 0 ]; then admin=root; else admin=$(id -un); fi
    for _ in $(seq 1 120); do
      if mariadb-admin --socket="$dir/mysqld.sock" -u"$admin" status >/dev/null 2>&1; then break; fi
      sleep 0.5
    done
    mariadb --socket="$dir/mysqld.sock" -u"$admin" -e \
      "CREATE USER 'sundial'@'127.0.0.1' IDENTIFIED BY 'sundial-test';
       GRANT ALL PRIVILEGES ON *.* TO 'sundial'@'127.0.0.1' WITH GRANT OPTION;
       CREATE USER 'sundial_tls'@'127.0.0.1' IDENTIFIED BY 'sundial-test' REQUIRE X509;
       GRANT ALL PRIVILEGES ON *.* TO 'sundial_tls'@'127.0.0.1';" \
      || { cat "$dir/server.log" >&2; exit 1; }
    echo "$port" > "$dir/port"
    echo "export SUNDIAL_MYSQL_HOST=127.0.0.1 SUNDIAL_MYSQL_PORT=$port SUNDIAL_MYSQL_USER=sundial SUNDIAL_MYSQL_PASSWORD=sundial-test SUNDIAL_MYSQL_DIR=$dir SUNDIAL_MYSQL_TLS_DIR=$dir/tls"
    ;;
  stop)
    dir=${2:?directory}
    if [ -f "$dir/mysqld.pid" ]; then
      pid=$(cat "$dir/mysqld.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
    ;;
  *)
    echo "usage: mariadb.sh start|stop|install DIR" >&2
    exit 2
    ;;
esac

#!/bin/sh
# A throwaway PostgreSQL cluster for tests (docs/scale-out.md, "Database engines").
#   scripts/pg.sh start DIR   create (first time) and start a cluster in DIR; prints its URL
#   scripts/pg.sh stop DIR    stop it (DIR stays; `start DIR` again reuses data and port)
#   scripts/pg.sh url DIR     print the URL of the cluster in DIR
# The server listens on 127.0.0.1 only, on a free port kept in DIR/port, with trust
# authentication for the single role "modelhub" (a loopback test cluster: never for data
# that matters). initdb and postgres refuse to run as root: as root the cluster runs as
# the Debian "postgres" user (runuser). Exit status 3: PostgreSQL binaries missing
# (Debian package postgresql; PG_BIN overrides /usr/lib/postgresql/*/bin).
set -e
BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
cmd=$1
dir=$2
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop|url DIR" >&2
  exit 2
fi
if [ ! -x "$BIN/initdb" ] || [ ! -x "$BIN/pg_ctl" ]; then
  echo "pg.sh: PostgreSQL binaries not found (apt-get install postgresql)" >&2
  exit 3
fi
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
free_port() {
  # A random port nobody listens on (ss, from iproute2).
  for p in $(shuf -i 20000-60000 -n 50); do
    if ! ss -ltnH 2>/dev/null | grep -q ":$p "; then
      echo "$p"
      return 0
    fi
  done
  return 1
}
url() {
  echo "postgresql://modelhub@127.0.0.1:$(cat "$dir/port")/modelhub"
}
case $cmd in
start)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_owner "$BIN/initdb" -D "$dir/data" -U modelhub --auth=trust -E UTF8 --locale=C \
      --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    free_port >"$dir/port"
  fi
  # The port was free when chosen, but another process may take it before the server binds
  # it (tests start clusters and servers side by side): then a new port, a few times.
  tries=0
  while :; do
    port=$(cat "$dir/port")
    rm -f "$dir/server.log" # this start's messages only
    if as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null 2>"$dir/pg_ctl.err"; then
      break
    fi
    tries=$((tries + 1))
    if [ "$tries" -lt 5 ] && grep -q "Address already in use" "$dir/server.log"; then
      free_port >"$dir/port"
      continue
    fi
    cat "$dir/pg_ctl.err" "$dir/server.log" >&2
    exit 1
  done
  if [ ! -f "$dir/created" ]; then
    as_owner "$BIN/createdb" -h 127.0.0.1 -p "$port" -U modelhub modelhub
    touch "$dir/created"
  fi
  url
  ;;
stop)
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$BIN/pg_ctl" -D "$dir/data" -w -t 30 -m fast stop >/dev/null
  fi
  ;;
url)
  url
  ;;
*)
  echo "usage: $0 start|stop|url DIR" >&2
  exit 2
  ;;
esac

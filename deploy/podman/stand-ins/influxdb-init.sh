#!/bin/sh
# The official influxdb:1.8 image's first start, for the stand-in: with no metadata yet,
# start influxd on loopback without auth, create what the environment asks for, stop
# it, then run the command (influxd reads INFLUXDB_* settings from the environment).
set -eu
if [ ! -d /var/lib/influxdb/meta ] && [ -n "${INFLUXDB_DB:-}${INFLUXDB_ADMIN_USER:-}" ]; then
  INFLUXDB_HTTP_AUTH_ENABLED=false INFLUXDB_HTTP_BIND_ADDRESS=127.0.0.1:8086 influxd &
  pid=$!
  for _ in $(seq 50); do curl -sf http://127.0.0.1:8086/ping >/dev/null && break; sleep 0.2; done
  q() { influx -host 127.0.0.1 -execute "$1"; }
  [ -n "${INFLUXDB_ADMIN_USER:-}" ] && q "CREATE USER \"$INFLUXDB_ADMIN_USER\" WITH PASSWORD '${INFLUXDB_ADMIN_PASSWORD:-}' WITH ALL PRIVILEGES"
  [ -n "${INFLUXDB_DB:-}" ] && q "CREATE DATABASE \"$INFLUXDB_DB\""
  if [ -n "${INFLUXDB_USER:-}" ]; then
    q "CREATE USER \"$INFLUXDB_USER\" WITH PASSWORD '${INFLUXDB_USER_PASSWORD:-}'"
    [ -n "${INFLUXDB_DB:-}" ] && q "GRANT ALL ON \"$INFLUXDB_DB\" TO \"$INFLUXDB_USER\""
  fi
  kill "$pid"
  wait "$pid" || true
fi
exec "$@"

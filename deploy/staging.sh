#!/usr/bin/env bash
# Staging: deploy/compose.yaml (serve, InfluxDB, Prometheus, Alertmanager) on serve's
# built-in mocks (deploy/compose.staging.yaml), brought up with podman-compose (or
# COMPOSE="docker compose"), checked from outside, and taken down:
#   0. Alertmanager can read its secrets as the user it runs as;
#   1. serve's /health says healthy, and `livegames smoke` passes against it;
#   2. Prometheus scrapes serve (`up == 1`) with every rule of alerts.yml loaded;
#   3. serve's points reach InfluxDB (as the user serve writes with);
#   4. an alert reaches Alertmanager: API-SPORTS made to fail through the admin API
#      opens the circuit, and CircuitBreakerOpen (`for: 1m`) fires (about 90 s).
#
#   deploy/staging.sh [BINARY]    # BINARY: the livegames the image is built around
#                                 # (default target/release/livegames)
# Images come from a registry when one answers, else from Debian's packages
# (deploy/image.sh). Secrets are made for the run. Ports 8000, 9090 and 9093.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
binary="${1:-$root/target/release/livegames}"
compose_cmd="${COMPOSE:-podman-compose}"
project="livegames-staging"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/podman/containers.conf}"
work="$(mktemp -d)"
made_secrets=""
say() { echo "staging: $*"; }
fail() { echo "staging: FAILED: $*" >&2; exit 1; }

bash "$here/image.sh" base
bash "$here/image.sh" stand-ins
bash "$here/image.sh" runtime "$binary" localhost/livegames:test

token="$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
cat > "$work/env" <<ENV
APISPORTS_KEY=staging-unused
LIVEGAMES_PUBLIC_URL=http://127.0.0.1:8000
LIVEGAMES_ADMIN_TOKEN=$token
INFLUXDB_ADMIN_PASSWORD=$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
LIVEGAMES_INFLUXDB_PASSWORD=$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
ENV
# Alertmanager runs as nobody: its secrets are that user's alone (RUNBOOK "Compose").
if [ ! -d "$here/alertmanager/secrets" ]; then
  made_secrets=1
  install -d -m 0700 -o 65534 -g 65534 "$here/alertmanager/secrets"
  for name in smtp_password slack_webhook_url; do
    printf 'https://hooks.invalid/staging' | install -m 0400 -o 65534 -g 65534 /dev/stdin "$here/alertmanager/secrets/$name"
  done
fi
compose() { $compose_cmd -p "$project" --env-file "$work/env" -f "$here/compose.yaml" -f "$here/compose.staging.yaml" "$@"; }
cleanup() {
  compose down -v >/dev/null 2>&1 || true
  [ -n "$made_secrets" ] && rm -rf "$here/alertmanager/secrets"
  rm -rf "$work"
}
trap cleanup EXIT

# Waits up to $1 seconds for the command after it to succeed.
within() {
  local seconds="$1"; shift
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 1
  done
}

say "up ($compose_cmd)"
compose up -d --no-build >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; fail "compose up"; }
# Alertmanager reads its secrets as its own user: a root-only file would load the
# config and fail the first notification.
readable() { compose exec -T alertmanager cat /etc/alertmanager/secrets/slack_webhook_url; }
within 30 readable || fail "Alertmanager (uid 65534) cannot read its secrets: $(ls -ln "$here/alertmanager/secrets")"
say "Alertmanager reads its secrets"
healthy() { curl -sf http://127.0.0.1:8000/health | grep -q '"status":"healthy"'; }
within 120 healthy || fail "serve's /health never said healthy: $(curl -s http://127.0.0.1:8000/health)"
say "serve healthy"
"$binary" smoke --url http://127.0.0.1:8000 || fail "smoke"
say "smoke passed"

scraped() { curl -sf 'http://127.0.0.1:9090/api/v1/query?query=up%7Bjob%3D%22livegames%22%7D' | grep -q '"value":\[[0-9.]*,"1"\]'; }
within 90 scraped || fail "Prometheus does not scrape serve (up != 1)"
rules_expected=$(grep -c -- '- alert:' "$here/prometheus/alerts.yml")
rules_loaded=$(curl -sf http://127.0.0.1:9090/api/v1/rules | python3 -c 'import json,sys; print(sum(len(g["rules"]) for g in json.load(sys.stdin)["data"]["groups"]))')
[ "$rules_loaded" = "$rules_expected" ] || fail "Prometheus loaded $rules_loaded rules of $rules_expected"
say "Prometheus scrapes serve, $rules_loaded rules loaded"

user_password="$(sed -n 's/^LIVEGAMES_INFLUXDB_PASSWORD=//p' "$work/env")"
points() { compose exec -T influxdb influx -username livegames -password "$user_password" -database livegames -execute 'SELECT count(*) FROM live_point' | grep -Eq '[1-9]'; }
within 60 points || fail "no live_point in InfluxDB"
say "serve's points are in InfluxDB"

admin=(-H "Authorization: Bearer $token" -H 'content-type: application/json')
curl -sf -X POST http://127.0.0.1:8000/admin/faults "${admin[@]}" -d '{"source":"apisports","mode":"down","duration":"10m"}' >/dev/null
curl -sf -X DELETE http://127.0.0.1:8000/admin/scores/cache -H "Authorization: Bearer $token" >/dev/null
open_circuit() { curl -s http://127.0.0.1:8000/api/nfl/scores | grep -q circuit_open; }
within 30 open_circuit || fail "the API-SPORTS circuit did not open"
fired() { curl -sf http://127.0.0.1:9093/api/v2/alerts | grep -q '"alertname":"CircuitBreakerOpen"'; }
within 180 fired || fail "CircuitBreakerOpen never reached Alertmanager"
say "CircuitBreakerOpen reached Alertmanager"
say "passed"

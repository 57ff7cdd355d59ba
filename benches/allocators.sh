#!/usr/bin/env bash
# Resident memory of `livegames serve` under connection churn, per allocator, side by
# side: each variant is its own serve on its own port with its own `livegames load`
# (1,000 WebSockets that close every 60 s and resume), sampled every 30 s from
# /proc/PID/status (RssAnon: what the process allocated; RssFile: the binary's pages).
#
#   bash benches/allocators.sh BINARY [SECONDS] [NAME=ENV ...]
#
# BINARY is a release `livegames`; each NAME=ENV runs one serve with that environment,
# e.g. (on a binary built with the system allocator, where LD_PRELOAD takes effect):
#   bash benches/allocators.sh target/release/livegames 420 glibc= \
#     jemalloc=LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 \
#     mimalloc=LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2
# Prints one row per sample: seconds, then each variant's RssAnon in MiB. Traffic
# goes to 127.0.0.1 only, for a bounded time.
set -euo pipefail
binary=$(realpath "$1"); seconds=${2:-420}; shift 2 || true
[ "$#" -gt 0 ] || set -- default=
out=$(mktemp -d)
pids=(); names=(); port=$((20000 + RANDOM % 20000))
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$out"' EXIT
for variant in "$@"; do
  name=${variant%%=*}; env_pair=${variant#*=}
  env ${env_pair:+"$env_pair"} "$binary" serve --addr "127.0.0.1:$port" > "$out/$name.log" 2>&1 &
  pids+=("$!"); names+=("$name")
  for _ in $(seq 100); do grep -q 'serving live games' "$out/$name.log" && break; sleep 0.1; done
  "$binary" load "http://127.0.0.1:$port" --conns 1000 --ramp 20s --duration "${seconds}s" \
    --churn 60s --reconnect --allow-drops --quiet > "$out/$name.load" 2>&1 &
  port=$((port + 1))
done
echo "seconds ${names[*]} (RssAnon, MiB)"
for ((t = 30; t <= seconds; t += 30)); do
  sleep 30
  row="$t"
  for pid in "${pids[@]}"; do
    row="$row $(awk '/^RssAnon:/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status")"
  done
  echo "$row"
done

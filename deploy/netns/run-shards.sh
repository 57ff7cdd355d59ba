#!/usr/bin/env bash
# A sharded load run for real on one machine: N `livegames load` workers, each in its
# own Linux network namespace with its own address (veth pairs on a bridge this
# script makes), against `livegames serve` in the root namespace; then one merged
# verdict (`report merge --shards N`). Needs root and iproute2. Everything it makes
# (namespaces, bridge, processes) is removed on exit.
#
#   deploy/netns/run-shards.sh --workers 4 --conns 2000 --duration 30s --out reports/netns
#
# Options: --workers N (3), --servers S (1: worker i loads server i mod S, each
# `serve` its own process on its own port), --conns C for the whole run (30), --duration D (5s),
# --ramp R (0s), --rate F frames/s per live game (10), --out DIR (a temp dir),
# --bin PATH (target/release/livegames, else target/debug/livegames),
# --kill I (kill worker I with SIGKILL once its connections are open, to see the
# merged verdict fail naming its shard), --budget EXPR (repeatable, for the merge),
# --load-arg ARG (repeatable, passed to every worker, e.g. --load-arg=--connect-timeout=30s).
# Exit status: the merge's (0 every budget held and every shard reported, 1 not).
set -euo pipefail

workers=3 servers=1 conns=30 duration=5s ramp=0s rate=10 out="" bin="" kill_shard=""
budgets=()
load_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --ramp) ramp=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --kill) kill_shard=$2; shift 2 ;;
    --budget) budgets+=(--budget "$2"); shift 2 ;;
    --load-arg=*) load_args+=("${1#--load-arg=}"); shift ;;
    --load-arg) load_args+=("$2"); shift 2 ;;
    *) echo "run-shards.sh: unknown option $1 (see the header of this script)" >&2; exit 2 ;;
  esac
done
here=$(cd "$(dirname "$0")/../.." && pwd)
if [ -z "$bin" ]; then
  bin="$here/target/release/livegames"
  [ -x "$bin" ] || bin="$here/target/debug/livegames"
fi
[ -x "$bin" ] || { echo "run-shards.sh: no livegames binary at $bin (cargo build first, or --bin)" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "run-shards.sh: network namespaces need root" >&2; exit 2; }
command -v ip >/dev/null || { echo "run-shards.sh: needs ip (apt-get install iproute2)" >&2; exit 2; }
out=${out:-$(mktemp -d /tmp/livegames-netns.XXXXXX)}
mkdir -p "$out"

# Names unique to this run (interface names are at most 15 characters).
tag="lg$(( $$ % 100000 ))"
net="10.213.$(( $$ % 250 ))"
bridge="${tag}br"
server_ip="$net.1"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for i in $(seq 0 $((workers - 1))); do ip netns del "${tag}w$i" 2>/dev/null || true; done
  ip link del "$bridge" 2>/dev/null || true
}
trap cleanup EXIT

ip link add "$bridge" type bridge
ip addr add "$server_ip/24" dev "$bridge"
ip link set "$bridge" up
for i in $(seq 0 $((workers - 1))); do
  ns="${tag}w$i"
  ip netns add "$ns"
  ip link add "${tag}h$i" type veth peer name "${tag}n$i"
  ip link set "${tag}h$i" master "$bridge" up
  ip link set "${tag}n$i" netns "$ns"
  ip -n "$ns" addr add "$net.$((10 + i))/24" dev "${tag}n$i"
  ip -n "$ns" link set "${tag}n$i" up
  ip -n "$ns" link set lo up
  # A load host's usual setting: connect() looks for a free ephemeral port (even
  # ones first) and checks each candidate against the open connections, so with
  # thousands of connections from one address in the default range (32768-60999)
  # every connect scans a mostly used range: at 100,000 connections over six
  # workers that scan took two thirds of the machine's CPU.
  ip netns exec "$ns" sysctl -q -w net.ipv4.ip_local_port_range="1024 65535"
done

# The servers, on the bridge's address, in the root namespace.
server_addrs=()
server_pids=()
for s in $(seq 0 $((servers - 1))); do
  "$bin" serve --addr "$server_ip:0" --rate "$rate" --log-format json 2> "$out/serve-$s.log" &
  pids+=($!)
  server_pids+=($!)
  addr=""
  for _ in $(seq 1 300); do
    addr=$(grep -o '"local_addr":"[^"]*"' "$out/serve-$s.log" | head -1 | cut -d'"' -f4 || true)
    [ -n "$addr" ] && break
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "run-shards.sh: server $s did not start:" >&2; cat "$out/serve-$s.log" >&2; exit 1; }
  server_addrs+=("$addr")
  echo "server $s: http://$addr (root namespace)"
done

# Peak memory of every process, sampled each second (VmRSS, KiB) into $out/rss-PID,
# and the machine's CPU use each second (all cores, % busy incl. softirq) into
# $out/cpu.log.
cpu_busy() { awk '/^cpu / { idle = $5 + $6; total = 0; for (i = 2; i <= NF; i++) total += $i; print total, idle }' /proc/stat; }
sample_rss() {
  read -r total0 idle0 < <(cpu_busy)
  while true; do
    read -r total1 idle1 < <(cpu_busy)
    if [ "$total1" -gt "$total0" ]; then
      echo "$(date +%s) $(( 100 * ( (total1 - total0) - (idle1 - idle0) ) / (total1 - total0) ))" >> "$out/cpu.log"
    fi
    total0=$total1 idle0=$idle1
    for pid in "$@"; do
      rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
      [ -n "$rss" ] || continue
      peak=$(cat "$out/rss-$pid" 2>/dev/null || echo 0)
      [ "$rss" -gt "$peak" ] && echo "$rss" > "$out/rss-$pid"
    done
    sleep 1
  done
}

# Each namespace reaches the server from its own address before the run starts.
for i in $(seq 0 $((workers - 1))); do
  ns="${tag}w$i"
  addr=${server_addrs[$((i % servers))]}
  ip netns exec "$ns" "$bin" smoke --url "http://$addr" --checks health --timeout 10s > "$out/reach-$i.log" 2>&1 \
    || { echo "run-shards.sh: namespace $ns cannot reach http://$addr:" >&2; cat "$out/reach-$i.log" >&2; exit 1; }
  echo "worker $i: namespace $ns, address $net.$((10 + i)), reaches the server"
done

start_at=$(date -u -d '+3 sec' +%Y-%m-%dT%H:%M:%S.%3NZ)
run_id="netns-$$"
worker_pids=()
for i in $(seq 0 $((workers - 1))); do
  ns="${tag}w$i"
  addr=${server_addrs[$((i % servers))]}
  ip netns exec "$ns" "$bin" load "http://$addr" --conns "$conns" --shard "$i/$workers" \
    --run-id "$run_id" --worker "$ns" --start-at "$start_at" --duration "$duration" \
    --ramp "$ramp" --report "$out/shard-$i" "${load_args[@]}" > "$out/worker-$i.log" 2>&1 &
  worker_pids+=($!)
  pids+=($!)
done
echo "run $run_id: $workers workers, $conns connections in all, starting at $start_at"
sample_rss "${server_pids[@]}" "${worker_pids[@]}" &
pids+=($!)

if [ -n "$kill_shard" ]; then
  for _ in $(seq 1 300); do
    grep -q "connections open" "$out/worker-$kill_shard.log" 2>/dev/null && break
    sleep 0.1
  done
  kill -KILL "${worker_pids[$kill_shard]}"
  echo "worker $kill_shard: killed (SIGKILL) with its connections open"
fi
for i in $(seq 0 $((workers - 1))); do
  status=0
  wait "${worker_pids[$i]}" || status=$?
  echo "worker $i: exit $status, peak RSS $(( $(cat "$out/rss-${worker_pids[$i]}" 2>/dev/null || echo 0) / 1024 )) MiB"
done
for s in $(seq 0 $((servers - 1))); do
  echo "server $s: peak RSS $(( $(cat "$out/rss-${server_pids[$s]}" 2>/dev/null || echo 0) / 1024 )) MiB"
done
awk '{ n++; sum += $2; if ($2 >= 95) full++ } END { if (n) printf "machine CPU: %d%% busy on average over %d s; %d s at 95%% or more (%s/cpu.log)\n", sum / n, n, full, dir }' dir="$out" "$out/cpu.log" 2>/dev/null || true

set +e
"$bin" report merge "$out"/shard-* --shards "$workers" --report "$out/merged" "${budgets[@]}"
verdict=$?
set -e
echo "merged report: $out/merged (exit $verdict)"
exit "$verdict"

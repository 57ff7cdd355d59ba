#!/usr/bin/env bash
# A sharded load run for real on one machine: N `livegames load` workers, each in its
# own Linux network namespace with its own address (veth pairs on a bridge this
# script makes), against `livegames serve` in the root namespace; then one merged
# verdict (`report merge --shards N`). Needs root and iproute2. Everything it makes
# (namespaces, bridge, processes) is removed on exit.
#
#   deploy/netns/run-shards.sh --workers 4 --conns 2000 --duration 30s --out reports/netns
#
# Options: --workers N (3), --conns C for the whole run (30), --duration D (5s),
# --ramp R (0s), --rate F frames/s per live game (10), --out DIR (a temp dir),
# --bin PATH (target/release/livegames, else target/debug/livegames),
# --kill I (kill worker I with SIGKILL once its connections are open, to see the
# merged verdict fail naming its shard), --budget EXPR (repeatable, for the merge).
# Exit status: the merge's (0 every budget held and every shard reported, 1 not).
set -euo pipefail

workers=3 conns=30 duration=5s ramp=0s rate=10 out="" bin="" kill_shard=""
budgets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --ramp) ramp=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --kill) kill_shard=$2; shift 2 ;;
    --budget) budgets+=(--budget "$2"); shift 2 ;;
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
done

# The server, on the bridge's address, in the root namespace.
"$bin" serve --addr "$server_ip:0" --rate "$rate" --log-format json 2> "$out/serve.log" &
pids+=($!)
addr=""
for _ in $(seq 1 200); do
  addr=$(grep -o '"local_addr":"[^"]*"' "$out/serve.log" | head -1 | cut -d'"' -f4 || true)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { echo "run-shards.sh: the server did not start:" >&2; cat "$out/serve.log" >&2; exit 1; }
echo "server: http://$addr (root namespace)"

# Each namespace reaches the server from its own address before the run starts.
for i in $(seq 0 $((workers - 1))); do
  ns="${tag}w$i"
  ip netns exec "$ns" "$bin" smoke --url "http://$addr" --checks health --timeout 10s > "$out/reach-$i.log" 2>&1 \
    || { echo "run-shards.sh: namespace $ns cannot reach http://$addr:" >&2; cat "$out/reach-$i.log" >&2; exit 1; }
  echo "worker $i: namespace $ns, address $net.$((10 + i)), reaches the server"
done

start_at=$(date -u -d '+3 sec' +%Y-%m-%dT%H:%M:%S.%3NZ)
run_id="netns-$$"
worker_pids=()
for i in $(seq 0 $((workers - 1))); do
  ns="${tag}w$i"
  ip netns exec "$ns" "$bin" load "http://$addr" --conns "$conns" --shard "$i/$workers" \
    --run-id "$run_id" --worker "$ns" --start-at "$start_at" --duration "$duration" \
    --ramp "$ramp" --report "$out/shard-$i" > "$out/worker-$i.log" 2>&1 &
  worker_pids+=($!)
  pids+=($!)
done
echo "run $run_id: $workers workers, $conns connections in all, starting at $start_at"

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
  echo "worker $i: exit $status"
done

set +e
"$bin" report merge "$out"/shard-* --shards "$workers" --report "$out/merged" "${budgets[@]}"
verdict=$?
set -e
echo "merged report: $out/merged (exit $verdict)"
exit "$verdict"

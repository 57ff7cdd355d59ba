#!/usr/bin/env bash
# Where each client's time goes, side by side: the loadgen bench's minimal client and
# `livegames load`, pinned as in the bench's default mode (serve on CPU 0, the client on
# CPU 1), one after the other against the same `livegames serve`, each profiled with
# `perf record` over the same steady window. Prints each client's samples by where they
# were spent (kernel, runtime, WebSocket, frame read, measuring, the connection's loop)
# and the symbols whose samples differ most.
#
#   bash benches/profile_pair.sh [CONNS] [RATE] [SECONDS]     # default 100 10 10
#
# Needs perf (Debian: linux-perf) and python3; run as root or with
# kernel.perf_event_paranoid <= 1. Traffic stays on 127.0.0.1.
set -euo pipefail
conns=${1:-100}
rate=${2:-10}
seconds=${3:-10}
out=${PROFILE_DIR:-target/profile-pair}
mkdir -p "$out"
cd "$(dirname "$0")/.."

bench=$(cargo bench --bench loadgen --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)
[ -x "$bench" ] || { echo "could not build the loadgen bench" >&2; exit 1; }
serve=target/release/livegames

taskset -c 0 "$serve" serve --addr 127.0.0.1:0 --speed 0.001 --rate "$rate" \
    --max-conns 100000 --log-format json >"$out/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
addr=""
for _ in $(seq 1 100); do
    addr=$(sed -n 's/.*"local_addr":"\([0-9.:]*\)".*/\1/p' "$out/serve.log" | head -1)
    [ -n "$addr" ] && break
    sleep 0.1
done
[ -n "$addr" ] || { echo "serve did not start: $out/serve.log" >&2; exit 1; }
# The live games with a market, as the bench takes them (the mock's first poll may
# not have them yet: asked again for up to 20 s).
urls=""
for _ in $(seq 1 200); do
    urls=$(curl -sf "http://$addr/api/live/games" | python3 -c '
import json, sys
games = json.load(sys.stdin)["games"]
print(",".join(g["ws_url"] for g in games
               if g["latest"]["state"] == "live" and g["latest"]["market"] is not None))' || true)
    [ -n "$urls" ] && break
    sleep 0.1
done
[ -n "$urls" ] || { echo "no live game on $addr" >&2; exit 1; }

for client in minimal livegames; do
    # The steady window starts once every connection is open: the bench's child
    # connects within a second or two at these counts; six seconds leaves margin.
    "$bench" --client "$client" --urls "$urls" --conns "$conns" \
        --seconds $((seconds + 10)) --cpu 1 >"$out/$client.out" 2>&1 &
    child=$!
    sleep 6
    perf record -F 20000 -e cpu-clock -g -p "$child" -o "$out/$client.data" \
        -- sleep "$seconds" >/dev/null 2>&1
    wait "$child"
    perf report -i "$out/$client.data" --sort sym --no-children --stdio -g none -n \
        2>/dev/null >"$out/$client.syms"
done

python3 - "$out" <<'EOF'
import re, sys
out = sys.argv[1]
groups = [
    ("kernel", lambda s: s.startswith("[k]")),
    ("frame read (JSON, contract fields)", lambda s: re.search(r"head_scan|FrameReader|contract::|serde|ts_of|StrSearcher|memcmp", s)),
    ("measuring (seq, latency, histograms)", lambda s: re.search(r"measure|hdrhistogram|Recorder|on_frame|EpochTracker", s)),
    ("WebSocket (tungstenite, buffers)", lambda s: re.search(r"tungstenite|bytes::|Utf8|from_utf8|memset|memcpy|memmove", s)),
    ("runtime (tokio, mio, wakers)", lambda s: re.search(r"tokio::runtime|mio::|atomic_waker|AtomicWaker|tokio::sync|thread_rng", s)),
    ("connection loop (select, stop, task)", lambda s: re.search(r"PollFn|cancellation_token|WaitForCancellation|TrackedFuture|Connection|VirtualUser|minimal_client|Notify", s)),
    ("libc, other", lambda s: True),
]
def load(client):
    # `perf report -n`: "  12.34%   567  [.] symbol" (percentage, samples, kind, name).
    per_sym = {}
    for line in open(f"{out}/{client}.syms"):
        m = re.match(r"\s*[\d.]+%\s+(\d+)\s+(\[.\])\s+(.*)", line)
        if m:
            sym = m.group(2) + " " + m.group(3).strip()
            per_sym[sym] = per_sym.get(sym, 0) + int(m.group(1))
    return per_sym, sum(per_sym.values())
bare, bare_n = load("minimal")
ours, ours_n = load("livegames")
def by_group(syms):
    totals = {name: 0.0 for name, _ in groups}
    for sym, n in syms.items():
        name = next(name for name, test in groups if test(sym))
        totals[name] += n
    return totals
gb, go = by_group(bare), by_group(ours)
print(f"samples at 20 kHz over the same window: minimal client {bare_n}, livegames load {ours_n} ({ours_n / max(bare_n, 1):.2f}x)")
print(f"{'where':<40} {'minimal':>8} {'load':>8} {'load - minimal':>15}")
for name, _ in groups:
    print(f"{name:<40} {gb[name]:>8.0f} {go[name]:>8.0f} {go[name] - gb[name]:>+15.0f}")
print("\nsymbols whose samples differ most (load - minimal):")
for sym in sorted(set(bare) | set(ours), key=lambda s: -abs(ours.get(s, 0) - bare.get(s, 0)))[:20]:
    print(f"{ours.get(sym, 0) - bare.get(sym, 0):+7.0f}  {sym[:100]}")
EOF
echo "minimal client: $(cat "$out/minimal.out")"
echo "livegames load: $(cat "$out/livegames.out")"
echo "(each: frames/s, cpu-s per 100k frames, KiB/conn, p99 ms; profiles in $out)"

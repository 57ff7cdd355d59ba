#!/usr/bin/env bash
# Wire bytes of one compressed stream: `livegames load --compress` against the
# compressing client of PyPI's `websockets`, both reading the same `websockets`
# server (tests/peers/ws-deflate-server.py, its default permessage-deflate) at the
# same time. The server counts what it wrote to each connection and the frames it
# sent there; the table is its count per frame. Then `load --compress no-context`.
#
# Run: bash benches/deflate-vs-python.sh [SECONDS]   (pip install websockets)
# Traffic goes to 127.0.0.1 only, for SECONDS (default 10) per round.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
cargo build --release --locked -q
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
python3 tests/peers/ws-deflate-server.py >"$work/server.out" &
server=$!
for _ in $(seq 100); do grep -q '^port ' "$work/server.out" && break; sleep 0.1; done
port="$(sed -n 's/^port //p' "$work/server.out")"
url="ws://127.0.0.1:$port/feed"

python_client() {
  python3 - "$url" "$seconds" <<'PY'
import asyncio, sys
from websockets.asyncio.client import connect
async def main(url, seconds):
    async with connect(url) as ws:  # compression="deflate" is the default
        async def read():
            async for _ in ws:
                pass
        try:
            await asyncio.wait_for(read(), seconds)
        except asyncio.TimeoutError:
            pass
asyncio.run(main(sys.argv[1], float(sys.argv[2])))
PY
}

for offer in on no-context; do
    lines_before="$(grep -c '^{' "$work/server.out" || true)"
  python_client &
  client=$!
  ./target/release/livegames load "$url" --conns 1 --duration "${seconds}s" --ramp 0s \
    --compress "$offer" --quiet --report "$work/report-$offer" >/dev/null || true
  wait "$client"
  for _ in $(seq 50); do
    [ "$(grep -c '^{' "$work/server.out")" -ge $((lines_before + 2)) ] && break
    sleep 0.1
  done
  echo "== load --compress $offer, and websockets' client, on the same stream for ${seconds}s"
  tail -n 2 "$work/server.out" | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
form = "%-24s %-74s %7s %9s %8s"
print(form % ("client", "agreed", "frames", "wire B", "B/frame"))
per = {}
for r in rows:
    name = (r["client"] or "?").split()[0][:24]
    per[name] = r["wire_bytes"] / max(r["frames"], 1)
    print(form % (name, r["agreed"], r["frames"], r["wire_bytes"], "%.1f" % per[name]))
ours = [v for k, v in per.items() if k.startswith("livegames")]
theirs = [v for k, v in per.items() if not k.startswith("livegames")]
if ours and theirs:
    print("livegames / websockets bytes per frame: %.2fx" % (ours[0] / theirs[0]))
'
done

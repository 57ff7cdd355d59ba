"""A WebSocket feed on PyPI's `websockets`, compressing with permessage-deflate as it
does by default, for tests/compression.rs and benches/compression.sh.

Every 20 ms (`--every MS`) a score frame of about 300 bytes of JSON (`seq`, `ts` in
Unix microseconds) goes to every connection. `--no-compression` declines every
offer. Prints `port N` first; when a connection ends, one JSON line: what was agreed
(`Sec-WebSocket-Extensions` of the answer, null when declined), the bytes written to
that connection's socket, the frames sent to it, how long it lasted and its
User-Agent. Serves until killed.
"""
import argparse
import asyncio
import json
import time

from websockets.asyncio.server import broadcast, serve

CLIENTS = {}  # connection -> its counters


def frame(seq):
    return json.dumps({
        "type": "score",
        "game_id": "0022400196",
        "seq": seq,
        "ts": time.time_ns() // 1000,
        "data": {
            "home": {"team": "BOS", "name": "Boston Celtics", "score": 80 + seq % 40},
            "away": {"team": "MIL", "name": "Milwaukee Bucks", "score": 75 + seq % 37},
            "period": 1 + seq // 500 % 4,
            "clock": f"{11 - seq % 12}:{seq * 7 % 60:02d}",
            "status": "in_progress",
            "market": {"ticker": "KXNBAGAME-26DEC07MILBOS-BOS", "yes_bid": 40 + seq % 19,
                       "yes_ask": 42 + seq % 19, "volume": 1000 + seq * 13},
        },
    })


async def ticker(every):
    seq = 0
    while True:
        seq += 1
        broadcast(CLIENTS, frame(seq))
        for counter in CLIENTS.values():
            counter["frames"] += 1
        await asyncio.sleep(every)


def counted(transport, counter):
    """Counts what goes through the connection's transport: the bytes on the wire."""
    write, writelines = transport.write, transport.writelines

    def counting_write(data):
        counter["wire_bytes"] += len(data)
        write(data)

    def counting_writelines(chunks):
        chunks = list(chunks)
        counter["wire_bytes"] += sum(len(c) for c in chunks)
        writelines(chunks)

    transport.write, transport.writelines = counting_write, counting_writelines


async def handler(ws):
    counter = {"wire_bytes": 0, "frames": 0}
    counted(ws.transport, counter)
    CLIENTS[ws] = counter
    started = time.monotonic()
    try:
        await ws.wait_closed()
    finally:
        CLIENTS.pop(ws, None)
        print(json.dumps({
            "client": ws.request.headers.get("User-Agent"),
            "agreed": ws.response.headers.get("Sec-WebSocket-Extensions"),
            "wire_bytes": counter["wire_bytes"],
            "frames": counter["frames"],
            "seconds": round(time.monotonic() - started, 3),
        }), flush=True)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--every", type=float, default=20.0)
    parser.add_argument("--no-compression", action="store_true")
    args = parser.parse_args()
    compression = None if args.no_compression else "deflate"
    async with serve(handler, "127.0.0.1", 0, compression=compression) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"port {port}", flush=True)
        asyncio.get_running_loop().create_task(ticker(args.every / 1000))
        await asyncio.Future()


asyncio.run(main())

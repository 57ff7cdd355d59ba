"""A peer client for benches/loadgen.rs: Python's `websockets` on asyncio, each frame
parsed as JSON and its `ts` (Unix µs) taken, as `livegames load` does. Prints
`ready`, then once a second `tick FRAMES OPEN`; on SIGTERM prints `p99 MICROS`.
Usage: python3 py-websockets.py CONNS URL[,URL...]   (pip install websockets)
"""
import asyncio
import json
import signal
import sys
import time

import websockets

conns = int(sys.argv[1])
urls = sys.argv[2].split(",")
frames = 0
opened = 0
latencies = []


async def client(url):
    global frames, opened
    async with websockets.connect(url, compression=None, ping_interval=None, max_size=2**20) as ws:
        opened += 1
        async for message in ws:
            frames += 1
            frame = json.loads(message)
            ts = frame.get("ts")
            if isinstance(ts, int):
                latencies.append(time.time_ns() // 1000 - ts)


async def ticker():
    while True:
        await asyncio.sleep(1)
        print(f"tick {frames} {opened}", flush=True)


async def main():
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await asyncio.sleep(0.2)
    tasks = [asyncio.create_task(client(urls[i % len(urls)])) for i in range(conns)]
    tasks.append(asyncio.create_task(ticker()))
    await stop.wait()
    latencies.sort()
    p99 = latencies[int((len(latencies) - 1) * 0.99)] if latencies else 0
    print(f"p99 {p99}", flush=True)
    for t in tasks:
        t.cancel()


asyncio.run(main())

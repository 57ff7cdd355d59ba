"""A client on PyPI's `websockets`, compressing as it does by default, for
tests/compression.rs: reads FRAMES frames from URL, sends the contract's ping padded
past the compression threshold (so it goes out compressed), waits for its pong, and
prints one JSON line: what was agreed, the frame types read, whether the pong came.
"""
import asyncio
import json
import sys

from websockets.asyncio.client import connect


async def main(url, frames):
    async with connect(url, open_timeout=10) as ws:
        agreed = ws.response.headers.get("Sec-WebSocket-Extensions")
        types = []
        for _ in range(frames):
            types.append(json.loads(await asyncio.wait_for(ws.recv(), 10))["type"])
        await ws.send(json.dumps({"type": "ping", "id": 7, "note": "x" * 400}))
        pong = False
        for _ in range(200):
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if frame["type"] == "pong" and frame.get("id") == 7:
                pong = True
                break
            if frame["type"] == "error":
                break
        print(json.dumps({"agreed": agreed, "types": types, "pong": pong}), flush=True)


asyncio.run(main(sys.argv[1], int(sys.argv[2])))

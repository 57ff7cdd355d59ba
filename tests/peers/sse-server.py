"""A Server-Sent Events endpoint on aiohttp (PyPI's), for tests/load_verdicts.rs.

GET /events streams `tick` events every 20 ms: `id:` the seq, `data:` JSON with
`seq` and `ts` (Unix microseconds). A reconnect with Last-Event-ID continues after
it (the seqs it missed are sent again: a log of the last 10,000 is kept). Prints its
port on stdout, then serves until killed.
"""
import asyncio
import json
import sys
import time

from aiohttp import web

LOG = []  # (seq, text) of every tick so far, oldest first
LOG_MAX = 10_000
resumed = 0


async def ticker():
    seq = 0
    while True:
        seq += 1
        text = json.dumps({"seq": seq, "ts": time.time_ns() // 1000})
        LOG.append((seq, text))
        del LOG[:-LOG_MAX]
        await asyncio.sleep(0.02)


async def events(request):
    global resumed
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    after = request.headers.get("Last-Event-ID")
    if after is not None:
        resumed += 1
        print(f"resumed {resumed}", flush=True)
        last = int(after)
    else:
        last = LOG[-1][0] if LOG else 0
    try:
        while True:
            fresh = [(s, t) for s, t in LOG[-200:] if s > last]
            for seq, text in fresh:
                await response.write(f"event: tick\nid: {seq}\ndata: {text}\n\n".encode())
                last = seq
            if not fresh:
                await response.write(b": keep-alive\n\n")
            await asyncio.sleep(0.02)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return response


async def main():
    asyncio.get_running_loop().create_task(ticker())
    app = web.Application()
    app.router.add_get("/events", events)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(f"port {port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)

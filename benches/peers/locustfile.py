"""A peer for benches/loadgen.rs: Locust, with a WebSocket user (websocket-client under
Locust's gevent) that holds one socket, parses every frame as JSON and reports it as a
request whose response time is its delivery latency (receive time - `ts`), the way a
Locust user measures a push feed. The bench sets the users with -u/-r and the URLs
with BENCH_URLS.

    pip install locust websocket-client
"""

import itertools
import json
import os
import time

import websocket
from locust import User, events, task

URLS = os.environ.get("BENCH_URLS", "").split(",")
NEXT_URL = itertools.count()


class Viewer(User):
    def on_start(self):
        url = URLS[next(NEXT_URL) % len(URLS)]
        self.ws = websocket.create_connection(url, enable_multithread=False)

    @task
    def read(self):
        while True:
            text = self.ws.recv()
            frame = json.loads(text)
            ts = frame.get("ts")
            latency_ms = time.time() * 1000 - ts / 1000 if isinstance(ts, (int, float)) else 0
            events.request.fire(
                request_type="WS",
                name="frame",
                response_time=latency_ms,
                response_length=len(text),
                exception=None,
                context={},
            )

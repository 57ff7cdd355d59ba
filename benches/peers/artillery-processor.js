// The processor of artillery.yml: each user's URL from BENCH_URLS (round robin), and
// every frame parsed as JSON, counted, and its delivery latency (ms) recorded in an
// Artillery histogram, the way an Artillery user measures a push feed.
'use strict';
const urls = (process.env.BENCH_URLS || '').split(',');
let next = 0;

function pickUrl(wsArgs, context, done) {
  wsArgs.target = urls[next++ % urls.length];
  done();
}

function measure(context, events, done) {
  context.ws.on('message', (data) => {
    const frame = JSON.parse(data);
    events.emit('counter', 'frames', 1);
    if (typeof frame.ts === 'number') {
      events.emit('histogram', 'delivery_ms', Date.now() - frame.ts / 1000);
    }
  });
  done();
}

// artillery-socketio.yml: the engine has connected the user's socket
// (context.sockets['']) before the flow's first step; each `tick` event is counted and
// its latency recorded, as `measure` does for WebSocket frames.
function measureSocketio(context, events, done) {
  context.sockets[''].on('tick', (data) => {
    events.emit('counter', 'frames', 1);
    if (data && typeof data.ts === 'number') {
      events.emit('histogram', 'delivery_ms', Date.now() - data.ts / 1000);
    }
  });
  done();
}

module.exports = { pickUrl, measure, measureSocketio };

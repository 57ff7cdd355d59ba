// A peer client for benches/loadgen.rs: node's `ws`, each frame parsed as JSON and
// its `ts` (Unix µs) taken, as `livegames load` does. Prints `ready`, then once a
// second `tick FRAMES OPEN`; on SIGTERM prints `p99 MICROS` and exits.
// Usage: node node-ws.js CONNS URL[,URL...]   (npm install --prefix benches/peers ws)
'use strict';
const WebSocket = require('ws');
const conns = Number(process.argv[2]);
const urls = process.argv[3].split(',');
let frames = 0;
let open = 0;
const latencies = [];
console.log('ready');
setTimeout(() => {
  for (let i = 0; i < conns; i++) {
    const ws = new WebSocket(urls[i % urls.length], { perMessageDeflate: false });
    ws.on('open', () => { open++; });
    ws.on('message', (data) => {
      frames++;
      const frame = JSON.parse(data);
      if (typeof frame.ts === 'number') {
        latencies.push(Date.now() * 1000 - frame.ts);
      }
    });
    ws.on('error', () => {});
  }
}, 200);
setInterval(() => console.log(`tick ${frames} ${open}`), 1000);
process.on('SIGTERM', () => {
  latencies.sort((a, b) => a - b);
  const p99 = latencies.length ? latencies[Math.floor((latencies.length - 1) * 0.99)] : 0;
  console.log(`p99 ${p99}`);
  process.exit(0);
});

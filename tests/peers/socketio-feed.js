// A socket.io 4 feed (npm's own server) for benches/loadgen.rs --protocol socketio:
// every client gets a `tick` event ({seq, ts: Unix µs, pad}, about the size of a
// livegames update) RATE times a second (argv[2], default 10), one broadcast per
// tick. GET /metrics says what a livegames server would about its stream
// (`livegames_ws_frames_sent_total`: events written to clients so far,
// `livegames_ws_connections`: clients connected), so the bench counts the peers'
// events the same way it does for serve. Prints its port, then serves until killed.
const http = require("http");
const { Server } = require("socket.io");

const rate = Number(process.argv[2] || 10);
let sent = 0;
const server = http.createServer((req, res) => {
  if (req.url === "/metrics") {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end(
      `livegames_ws_frames_sent_total ${sent}\nlivegames_ws_connections ${io.engine.clientsCount}\n`,
    );
  }
});
const io = new Server(server, { transports: ["websocket"], perMessageDeflate: false });
const pad = "x".repeat(380);
let seq = 0;
setInterval(() => {
  seq += 1;
  const ts = Math.round((performance.timeOrigin + performance.now()) * 1000);
  io.emit("tick", { seq, ts, pad });
  sent += io.engine.clientsCount;
}, 1000 / rate);

server.listen(0, "127.0.0.1", () => {
  console.log(`port ${server.address().port}`);
});

// A socket.io 4 server (npm's own), for tests/load_verdicts.rs: it wants
// auth {token: "t1"}, then emits a `tick` event ({seq, ts: Unix µs}) and a `chat`
// event every 20 ms to each client, and counts the `subscribe` events it gets.
// It prints its port on stdout, then serves until killed.
const http = require("http");
const { Server } = require("socket.io");

const server = http.createServer();
const io = new Server(server, { pingInterval: 300, pingTimeout: 2000 });
let subscribes = 0;

io.use((socket, next) => {
  if (socket.handshake.auth && socket.handshake.auth.token === "t1") {
    next();
  } else {
    next(new Error("not authorized"));
  }
});

io.on("connection", (socket) => {
  let seq = 0;
  socket.on("subscribe", () => {
    subscribes += 1;
    console.log(`subscribes ${subscribes}`);
  });
  const timer = setInterval(() => {
    seq += 1;
    const ts = Math.round((performance.timeOrigin + performance.now()) * 1000);
    socket.emit("tick", { seq, ts });
    socket.emit("chat", { text: "hi" });
  }, 20);
  socket.on("disconnect", () => clearInterval(timer));
});

server.listen(0, "127.0.0.1", () => {
  console.log(`port ${server.address().port}`);
});

// The reference client side by side with stampede's agents (benches/hub-agents.sh):
// N socket.io-client connections to HUB, each registering with an ack and
// sending an acked heartbeat every HEARTBEAT_MS (±20 %), for SECONDS, then exit.
//
//   node benches/sio-clients.js http://127.0.0.1:8080 10000 5000 35
"use strict";
const path = require("path");
const { io } = require(path.join(__dirname, "..", "tests", "node", "node_modules", "socket.io-client"));

const [hub, n, heartbeatMs, seconds] = process.argv.slice(2);
const count = Number(n);
let registered = 0;
let errors = 0;
const sockets = [];
for (let i = 0; i < count; i++) {
  const socket = io(hub, { transports: ["websocket"], reconnection: false, forceNew: true });
  socket.on("connect", () => {
    socket.emit("register", { id: `peer-${i}` }, () => {
      registered++;
      const beat = () => {
        const jitter = 1 + (Math.random() * 0.4 - 0.2);
        socket.heartbeat = setTimeout(() => {
          socket.emit("heartbeat", {}, () => {});
          beat();
        }, Number(heartbeatMs) * jitter);
      };
      beat();
    });
  });
  socket.on("connect_error", () => errors++);
  sockets.push(socket);
}
setTimeout(() => {
  console.log(`socket.io-client: ${registered} of ${count} registered, ${errors} connect errors`);
  for (const s of sockets) {
    clearTimeout(s.heartbeat);
    s.close();
  }
  process.exit(0);
}, Number(seconds) * 1000);

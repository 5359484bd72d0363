#!/usr/bin/env node
// Reference Socket.IO 4.x hub for stampede's compatibility tests
// (tests/it/node_compat.rs) and, several of them sharing a Redis adapter
// behind nginx, of the hub topology (tests/it/topology.rs, ci/topology/up.sh).
// Loopback only.
//
// Usage: node server.js [--port N] [--ping-interval MS] [--ping-timeout MS]
//                       [--max-lifetime MS] [--redis URL] [--name NAME]
// or the environment: PORT, PING_INTERVAL, PING_TIMEOUT, MAX_LIFETIME,
// REDIS_URL, HUB_NAME.
// Defaults: port 0 (any free port), Socket.IO's ping defaults (25 s / 20 s),
// lifetime 120 s, no Redis (a single hub, nothing else needed), name "hub".
//
// With a Redis URL the server uses @socket.io/redis-adapter: instances on
// the same Redis share rooms, so a command sent through one instance reaches
// the agents on all of them, and an agent's result reaches its commander
// wherever it is connected. `LISTENING` is printed once Redis is connected.
//
// Protocol on stdout, one line each (the test waits on these):
//   LISTENING <port>                 ready to accept connections
//   CONNECT <n> <auth>               a socket connected; n = sockets now connected,
//                                    auth = its CONNECT payload as JSON ({} if none)
//   REGISTER <id>                    `register` acked; the socket joined room "agents"
//   COMMAND <id> <delivered>         a `command` was fanned out to <delivered> sockets
//                                    (of every instance sharing the Redis adapter;
//                                    `?` when the instances did not all answer)
//   RESULT <command_id> <routed>     a `result` was sent back to its commander: 1 when the
//                                    commander is connected to this instance, 0 when it is
//                                    not (with Redis: sent on to the other instances)
//   DISCONNECT <id|-> <reason>       a socket went away (Socket.IO's reason)
//   EXIT <why>                       about to exit
//
// Events (namespace "/"):
//   register {id}                 -> ack {"ok": true, "id": id}; joins room "agents"
//   heartbeat, status (any data)  -> ack {"ok": true}
//   command {id, to, sent_us, data}
//                                 -> emits `command` with the same payload to the
//                                    agents (to = "agents" or anything else: the room;
//                                    {"sample": n}: n random registered agents;
//                                    [ids]: those agents), ack {"delivered": n};
//                                    remembers the sender for the command id
//                                    (the sockets are those of room "agents" on every
//                                    instance, as the adapter's fetchSockets sees them)
//   result {command_id, ...}      -> emits `result` with the same payload to the
//                                    socket that sent that command (on any instance)
//
// HTTP: GET /health -> {"ok": true, "connected": n};
//       GET /stats  -> {"name", "pid", "redis", "connected", "registered": [agent ids]}:
//                      this instance's own sockets and registry.
//
// The process exits by itself when its stdin closes (the test holds it), on
// SIGTERM/SIGINT, and after --max-lifetime in any case, so no orphan survives
// a crashed test.

"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

function option(name, envName, fallback) {
  const flag = `--${name}`;
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === flag && i + 1 < argv.length) return argv[i + 1];
    if (argv[i].startsWith(`${flag}=`)) return argv[i].slice(flag.length + 1);
  }
  const env = process.env[envName];
  return env !== undefined && env !== "" ? env : fallback;
}

function intOption(name, envName, fallback) {
  const raw = option(name, envName, String(fallback));
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    process.stderr.write(`server.js: --${name} (${envName}) must be a non-negative integer, got ${raw}\n`);
    process.exit(2);
  }
  return value;
}

const port = intOption("port", "PORT", 0);
const pingInterval = intOption("ping-interval", "PING_INTERVAL", 25000);
const pingTimeout = intOption("ping-timeout", "PING_TIMEOUT", 20000);
const maxLifetime = intOption("max-lifetime", "MAX_LIFETIME", 120000);
const redisUrl = option("redis", "REDIS_URL", "");
const name = option("name", "HUB_NAME", "hub");

function say(line) {
  process.stdout.write(`${line}\n`);
}

let exiting = false;
function exit(why, code = 0) {
  if (exiting) return;
  exiting = true;
  say(`EXIT ${why}`);
  // Give stdout a chance to flush, then go whatever the sockets do.
  setImmediate(() => process.exit(code));
}

// Bounded lifetime, whatever happens to the parent.
setTimeout(() => exit("max-lifetime"), maxLifetime);
// The test holds stdin: EOF (or an error) means it is gone.
process.stdin.on("end", () => exit("stdin-closed"));
process.stdin.on("close", () => exit("stdin-closed"));
process.stdin.on("error", () => exit("stdin-error"));
process.stdin.resume();
process.on("SIGTERM", () => exit("sigterm"));
process.on("SIGINT", () => exit("sigint"));
process.on("SIGHUP", () => exit("sighup"));

const httpServer = http.createServer((req, res) => {
  if (req.url === "/health") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ ok: true, connected: io.engine.clientsCount }));
    return;
  }
  if (req.url === "/stats") {
    const registered = [...agents.entries()].filter(([, s]) => s.connected).map(([id]) => id);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        name,
        pid: process.pid,
        redis: redisUrl !== "",
        connected: io.engine.clientsCount,
        registered,
      }),
    );
    return;
  }
  res.writeHead(404);
  res.end();
});

const io = new Server(httpServer, {
  pingInterval,
  pingTimeout,
  // No CORS, no connection-state recovery: a plain 4.x server.
  serveClient: false,
});

// Registered agents by id (the latest socket wins).
const agents = new Map();
// Command id -> the socket that sent it; bounded, oldest dropped first.
const senders = new Map();
const MAX_SENDERS = 100000;

function ack(fn, value) {
  if (typeof fn === "function") fn(value);
}

// The sockets a command goes to: room "agents" on every instance (the
// adapter's view: local sockets and, with Redis, the other instances'),
// narrowed by `to` ({"sample": n}: n random registered agents; [ids]: those
// agents; anything else: the whole room).
async function pick(to) {
  const room = await io.in("agents").fetchSockets();
  if (Array.isArray(to)) {
    const wanted = new Set(to.map(String));
    const byAgent = new Map();
    for (const s of room) {
      if (s.data && wanted.has(String(s.data.agentId))) byAgent.set(String(s.data.agentId), s);
    }
    return [...byAgent.values()];
  }
  if (to && typeof to === "object" && Number.isInteger(to.sample)) {
    const registered = room.filter((s) => s.data && s.data.agentId !== undefined);
    for (let i = registered.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [registered[i], registered[j]] = [registered[j], registered[i]];
    }
    return registered.slice(0, Math.max(0, to.sample));
  }
  return room;
}

// Room of the commander of a command: results are emitted to it, so they
// reach the commander on whichever instance it is connected to.
function commandRoom(id) {
  return `command:${id}`;
}

io.on("connection", (socket) => {
  say(`CONNECT ${io.engine.clientsCount} ${JSON.stringify(socket.handshake.auth || {})}`);

  socket.on("register", (data, fn) => {
    const id = data && data.id !== undefined ? String(data.id) : socket.id;
    socket.data.agentId = id;
    agents.set(id, socket);
    socket.join("agents");
    ack(fn, { ok: true, id });
    say(`REGISTER ${id}`);
  });

  socket.on("heartbeat", (_data, fn) => ack(typeof _data === "function" ? _data : fn, { ok: true }));
  socket.on("status", (_data, fn) => ack(typeof _data === "function" ? _data : fn, { ok: true }));

  socket.on("command", async (payload, fn) => {
    const id = payload && payload.id !== undefined ? String(payload.id) : "";
    if (id !== "") {
      senders.set(id, socket);
      socket.join(commandRoom(id));
      if (senders.size > MAX_SENDERS) {
        const [oldest, s] = senders.entries().next().value;
        senders.delete(oldest);
        s.leave(commandRoom(oldest));
      }
    }
    let targets;
    try {
      targets = await pick(payload ? payload.to : undefined);
    } catch (e) {
      // Some instance did not answer (one just died, say): the whole room,
      // without a count.
      process.stderr.write(`server.js: command ${id || "-"}: ${e.message}\n`);
      io.to("agents").emit("command", payload);
      ack(fn, { delivered: null });
      say(`COMMAND ${id || "-"} ?`);
      return;
    }
    // Exactly the sockets counted (each socket is a room of its own; an
    // empty list must not become a broadcast to everyone).
    if (targets.length > 0) io.to(targets.map((s) => s.id)).emit("command", payload);
    ack(fn, { delivered: targets.length });
    say(`COMMAND ${id || "-"} ${targets.length}`);
  });

  socket.on("result", (payload, fn) => {
    const id = payload && payload.command_id !== undefined ? String(payload.command_id) : "";
    const sender = senders.get(id);
    const routed = sender && sender.connected ? 1 : 0;
    // The sender here: straight to it; elsewhere (with Redis): to the
    // command's room, which the sender's instance joined it to.
    if (routed) sender.emit("result", payload);
    else if (id !== "" && redisUrl !== "") io.to(commandRoom(id)).emit("result", payload);
    ack(fn, { ok: true, routed: routed === 1 });
    say(`RESULT ${id || "-"} ${routed}`);
  });

  socket.on("disconnect", (reason) => {
    const id = socket.data.agentId;
    if (id !== undefined && agents.get(id) === socket) agents.delete(id);
    for (const [command, s] of senders) {
      if (s === socket) senders.delete(command);
    }
    say(`DISCONNECT ${id === undefined ? "-" : id} ${reason}`);
  });
});

httpServer.on("error", (e) => {
  process.stderr.write(`server.js: ${e.message}\n`);
  exit("listen-error", 1);
});

function listen() {
  httpServer.listen(port, "127.0.0.1", () => {
    say(`LISTENING ${httpServer.address().port}`);
  });
}

if (redisUrl === "") {
  listen();
} else {
  const { createClient } = require("redis");
  const { createAdapter } = require("@socket.io/redis-adapter");
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  for (const client of [pub, sub]) {
    client.on("error", (e) => process.stderr.write(`server.js: redis: ${e.message}\n`));
  }
  Promise.all([pub.connect(), sub.connect()]).then(
    () => {
      io.adapter(createAdapter(pub, sub, { requestsTimeout: 3000 }));
      listen();
    },
    (e) => {
      process.stderr.write(`server.js: cannot connect to Redis at ${redisUrl}: ${e.message}\n`);
      exit("redis-error", 1);
    },
  );
}

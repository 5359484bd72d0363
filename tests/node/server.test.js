// Self-check of server.js with the reference client (socket.io-client 4.x):
// `node --test` in this folder (.ci/run runs it before the Rust tests, so a
// broken reference hub fails on its own, not as a puzzling engine failure).

"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const { spawn } = require("node:child_process");
const path = require("node:path");
const readline = require("node:readline");
const { io } = require("socket.io-client");

const SERVER = path.join(__dirname, "server.js");
// Generous: these waits are for conditions (lines, events, acks) on a
// machine that may be loaded, never for a time to pass.
const WAIT_MS = 30000;

function withTimeout(promise, what, ms = WAIT_MS) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// Starts server.js; resolves once it printed LISTENING.
async function startServer(args = []) {
  const child = spawn(process.execPath, [SERVER, "--ping-interval", "300", "--ping-timeout", "300", ...args], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = [];
  const waiters = [];
  readline.createInterface({ input: child.stdout }).on("line", (line) => {
    lines.push(line);
    for (const w of [...waiters]) {
      if (w.match(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  const server = {
    child,
    lines,
    exited,
    // Resolves with the first line (already seen or coming) matching `match`.
    waitLine(match, what) {
      const seen = lines.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return withTimeout(new Promise((resolve) => waiters.push({ match, resolve })), what);
    },
  };
  const listening = await server.waitLine((l) => l.startsWith("LISTENING "), "LISTENING");
  server.port = Number(listening.split(" ")[1]);
  return server;
}

function connect(port, opts = {}) {
  return io(`http://127.0.0.1:${port}`, { transports: ["websocket"], reconnection: false, ...opts });
}

function once(socket, event, what) {
  return withTimeout(new Promise((resolve) => socket.once(event, resolve)), what);
}

function emitAck(socket, event, data) {
  return withTimeout(socket.timeout(WAIT_MS).emitWithAck(event, data), `${event} ack`);
}

test("register ack, heartbeat/status acks, command fan-out and result routing", async () => {
  const server = await startServer();
  const sockets = [];
  try {
    const agents = [];
    for (let i = 0; i < 3; i++) {
      const s = connect(server.port, { auth: { token: `t-${i}` } });
      sockets.push(s);
      await once(s, "connect", `agent ${i} connect`);
      await server.waitLine((l) => l.startsWith("CONNECT ") && l.endsWith(` {"token":"t-${i}"}`), `CONNECT with auth t-${i}`);
      assert.deepEqual(await emitAck(s, "register", { id: `agent-${i}` }), { ok: true, id: `agent-${i}` });
      assert.deepEqual(await emitAck(s, "heartbeat", { n: 1 }), { ok: true });
      assert.deepEqual(await emitAck(s, "heartbeat"), { ok: true });
      assert.deepEqual(await emitAck(s, "status", { load: 3 }), { ok: true });
      agents.push(s);
    }
    await server.waitLine((l) => l === "REGISTER agent-2", "REGISTER agent-2");

    const ops = connect(server.port);
    sockets.push(ops);
    await once(ops, "connect", "commander connect");
    const results = [];
    ops.on("result", (r) => results.push(r));

    const received = agents.map((s, i) =>
      once(s, "command", `command at agent ${i}`).then((cmd) => {
        s.emit("result", { command_id: cmd.id, sent_us: cmd.sent_us, agent: `agent-${i}` });
        return cmd;
      }),
    );
    const payload = { id: "ops-1", to: "agents", sent_us: Date.now() * 1000, data: { op: "update" } };
    assert.deepEqual(await emitAck(ops, "command", payload), { delivered: 3 });
    for (const cmd of await Promise.all(received)) assert.deepEqual(cmd, payload);

    await withTimeout(
      (async () => {
        while (results.length < 3) await new Promise((r) => setTimeout(r, 10));
      })(),
      "3 results at the commander",
    );
    assert.deepEqual(results.map((r) => r.agent).sort(), ["agent-0", "agent-1", "agent-2"]);
    for (const r of results) {
      assert.equal(r.command_id, "ops-1");
      assert.equal(r.sent_us, payload.sent_us);
    }

    // Targeted commands: a list and a sample.
    const one = once(agents[1], "command", "targeted command");
    assert.deepEqual(await emitAck(ops, "command", { id: "ops-2", to: ["agent-1"], sent_us: 1, data: {} }), {
      delivered: 1,
    });
    assert.equal((await one).id, "ops-2");
    assert.deepEqual(await emitAck(ops, "command", { id: "ops-3", to: { sample: 2 }, sent_us: 1, data: {} }), {
      delivered: 2,
    });

    // Several ping intervals (300 ms + 300 ms timeout) pass without a
    // disconnect: every client answers 3 more of the server's pings.
    await Promise.all(
      sockets.map((s, i) =>
        withTimeout(
          new Promise((resolve) => {
            let pings = 0;
            s.io.engine.on("ping", () => {
              pings += 1;
              if (pings === 3) resolve();
            });
          }),
          `3 pings at socket ${i}`,
        ),
      ),
    );
    for (const s of sockets) assert.ok(s.connected, "still connected after 3 pings of 300 ms");
    assert.ok(!server.lines.some((l) => l.includes("ping timeout")), server.lines.join("\n"));
  } finally {
    for (const s of sockets) s.close();
    server.child.stdin.end();
  }
  const { code } = await withTimeout(server.exited, "exit after stdin closed");
  assert.equal(code, 0);
  assert.ok(server.lines.includes("EXIT stdin-closed"), server.lines.join("\n"));
});

test("a client that does not answer pings is dropped with ping timeout", async () => {
  const server = await startServer();
  const s = connect(server.port);
  try {
    await once(s, "connect", "connect");
    // Stop answering pings: the client's engine neither hears the server's
    // pings nor sends anything (its pong goes through sendPacket).
    s.io.engine.sendPacket = () => {};
    // …and does not give up on its own first (the client's own ping
    // deadline would close it as "transport close" on the server's side).
    s.io.engine.clearTimeoutFn(s.io.engine._pingTimeoutTimer);
    s.io.engine._resetPingTimeout = () => {};
    s.io.engine._pingTimeoutTime = Infinity;
    s.io.engine.removeAllListeners("ping");
    s.io.engine.transport.removeAllListeners("packet");
    await server.waitLine((l) => l.startsWith("DISCONNECT ") && l.endsWith("ping timeout"), "ping timeout");
  } finally {
    s.close();
    server.child.stdin.end();
  }
  await withTimeout(server.exited, "exit");
});

test("a restart on the same port: the client reconnects and registers again", async () => {
  const first = await startServer();
  const port = first.port;
  const s = connect(port, { reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 200 });
  let second;
  try {
    s.on("connect", () => s.emit("register", { id: "agent-r" }));
    await first.waitLine((l) => l === "REGISTER agent-r", "first REGISTER");
    const disconnected = once(s, "disconnect", "disconnect");
    first.child.kill("SIGKILL");
    await withTimeout(first.exited, "killed server");
    await disconnected;
    second = await startServer(["--port", String(port)]);
    assert.equal(second.port, port);
    await second.waitLine((l) => l === "REGISTER agent-r", "REGISTER after the restart");
  } finally {
    s.close();
    if (second) second.child.stdin.end();
  }
  if (second) await withTimeout(second.exited, "exit");
});

test("max lifetime ends the server", async () => {
  const server = await startServer(["--max-lifetime", "300"]);
  const { code } = await withTimeout(server.exited, "exit by max lifetime");
  assert.equal(code, 0);
  assert.ok(server.lines.includes("EXIT max-lifetime"), server.lines.join("\n"));
});

// A free TCP port on loopback (for redis-server, which cannot take port 0).
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = require("node:net").createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// redis-server on a free loopback port, no persistence; resolves once ready.
async function startRedis() {
  const port = await freePort();
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const out = [];
  await withTimeout(
    new Promise((resolve, reject) => {
      child.on("error", reject);
      child.on("exit", (code) => reject(new Error(`redis-server exited (${code}):\n${out.join("")}`)));
      child.stdout.on("data", (d) => {
        out.push(String(d));
        if (out.join("").includes("Ready to accept connections")) resolve();
      });
    }),
    "redis-server ready",
  );
  return { child, url: `redis://127.0.0.1:${port}` };
}

function haveRedis() {
  return require("node:child_process").spawnSync("redis-server", ["--version"]).status === 0;
}

test("two instances on one Redis: a command through one reaches the agents of both, results come back", async (t) => {
  if (!haveRedis()) {
    // .ci/run installs redis-server: in CI its absence is a failure.
    if (process.env.CI) assert.fail("redis-server is missing (apt-get install redis-server)");
    t.skip("redis-server is missing (apt-get install redis-server): the Redis adapter was NOT checked");
    return;
  }
  const redis = await startRedis();
  const servers = [];
  const sockets = [];
  try {
    for (const name of ["hub-a", "hub-b"]) {
      servers.push(await startServer(["--redis", redis.url, "--name", name]));
    }
    // Two agents on each instance.
    const agents = [];
    for (let i = 0; i < 4; i++) {
      const server = servers[i % 2];
      const s = connect(server.port);
      sockets.push(s);
      await once(s, "connect", `agent ${i} connect`);
      assert.deepEqual(await emitAck(s, "register", { id: `agent-${i}` }), { ok: true, id: `agent-${i}` });
      agents.push(s);
    }
    // Each instance's own registry.
    for (const [n, server] of servers.entries()) {
      const stats = await (await fetch(`http://127.0.0.1:${server.port}/stats`)).json();
      assert.equal(stats.name, n === 0 ? "hub-a" : "hub-b");
      assert.equal(stats.pid, server.child.pid);
      assert.equal(stats.redis, true);
      assert.deepEqual(stats.registered.sort(), n === 0 ? ["agent-0", "agent-2"] : ["agent-1", "agent-3"]);
    }

    // The commander on hub-a: all four agents get the command, and every
    // result (two of them through hub-b) reaches the commander.
    const ops = connect(servers[0].port);
    sockets.push(ops);
    await once(ops, "connect", "commander connect");
    const results = [];
    ops.on("result", (r) => results.push(r));
    const received = agents.map((s, i) =>
      once(s, "command", `command at agent ${i}`).then((cmd) => {
        s.emit("result", { command_id: cmd.id, agent: `agent-${i}` });
        return cmd;
      }),
    );
    const payload = { id: "ops-1", to: "agents", sent_us: 1, data: { op: "update" } };
    assert.deepEqual(await emitAck(ops, "command", payload), { delivered: 4 });
    for (const cmd of await Promise.all(received)) assert.deepEqual(cmd, payload);
    await withTimeout(
      (async () => {
        while (results.length < 4) await new Promise((r) => setTimeout(r, 10));
      })(),
      "4 results at the commander",
    );
    assert.deepEqual(results.map((r) => r.agent).sort(), ["agent-0", "agent-1", "agent-2", "agent-3"]);
    await servers[0].waitLine((l) => l === "COMMAND ops-1 4", "COMMAND ops-1 4");

    // Targeted across instances: a list naming an agent of hub-b, a sample.
    const one = once(agents[3], "command", "targeted command");
    assert.deepEqual(await emitAck(ops, "command", { id: "ops-2", to: ["agent-3"], sent_us: 1, data: {} }), {
      delivered: 1,
    });
    assert.equal((await one).id, "ops-2");
    assert.deepEqual(await emitAck(ops, "command", { id: "ops-3", to: { sample: 3 }, sent_us: 1, data: {} }), {
      delivered: 3,
    });
  } finally {
    for (const s of sockets) s.close();
    for (const server of servers) server.child.stdin.end();
    await Promise.all(servers.map((s) => withTimeout(s.exited, "exit")));
    redis.child.kill("SIGKILL");
  }
});

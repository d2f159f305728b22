// Message fan-out bench: ROOMS channels, each with one sending socket and LISTENERS sockets of
// the other member; messages go out at RATE per second for SECONDS. Prints one JSON line with
// delivery latency percentiles, throughput, and the server's CPU time and memory.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const io = createRequire(import.meta.url)('socket.io-client-v4').io;
const BASE = process.env.BENCH_URL;
const SERVER_PID = process.env.BENCH_SERVER_PID;
const ROOMS = Number(process.env.ROOMS || 20);
const LISTENERS = Number(process.env.LISTENERS || 10);
const RATE = Number(process.env.RATE || 500);
const SECONDS = Number(process.env.SECONDS || 5);

async function post(path, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.Authorisation = token;
  const res = await fetch(BASE + path, { method: 'POST', headers, body: JSON.stringify(body) });
  return res.json();
}

function connect(token, channel) {
  const socket = io(BASE, {
    transports: ['websocket'], forceNew: true, reconnection: false,
    extraHeaders: { Authorisation: token, channels: channel },
  });
  return new Promise((resolve, reject) => {
    socket.on('connect', () => resolve(socket));
    socket.on('connect_error', reject);
  });
}

// CPU seconds (user + system) and resident memory of the server process.
function serverUsage() {
  const fields = readFileSync(`/proc/${SERVER_PID}/stat`, 'utf8').split(') ')[1].split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  const rss = readFileSync(`/proc/${SERVER_PID}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1];
  return { cpu: ticks / 100, rssKb: Number(rss) };
}

const latencies = [];
let received = 0;
const senders = [];
const all = [];
const before = serverUsage();
for (let r = 0; r < ROOMS; r++) {
  const sender = await post('/new', { username: `sender${r}` });
  const listener = await post('/new', { username: `listener${r}` });
  const { channel_id: channel } = await post('/create-channel', { to: listener.id, type: 1 }, sender.token);
  const socket = await connect(sender.token, channel);
  senders.push({ socket, channel });
  all.push(socket);
  for (let l = 0; l < LISTENERS; l++) {
    const s = await connect(listener.token, channel);
    s.on('message', (m) => {
      const sent = Number(m.content.split(' ')[1]);
      if (!Number.isNaN(sent)) {
        latencies.push(performance.now() - sent);
        received++;
      }
    });
    all.push(s);
  }
}
const connected = serverUsage();
const idleKbPerSocket = (connected.rssKb - before.rssKb) / all.length;

// Warm up, then measure.
for (const { socket, channel } of senders) socket.emit('message', { content: 'warmup', channel });
await new Promise((r) => setTimeout(r, 1000));
latencies.length = 0;
received = 0;

const start = serverUsage();
const total = RATE * SECONDS;
const interval = 1000 / (RATE / senders.length);
let sent = 0;
const began = performance.now();
await new Promise((resolve) => {
  senders.forEach(({ socket, channel }, i) => {
    setTimeout(() => {
      const timer = setInterval(() => {
        if (sent >= total) { clearInterval(timer); if (sent === total) { sent++; resolve(); } return; }
        sent++;
        socket.emit('message', { content: `t ${performance.now()}`, channel });
      }, interval);
    }, (i * interval) / senders.length);
  });
});
const sendSeconds = (performance.now() - began) / 1000;
await new Promise((r) => setTimeout(r, 2000));
const end = serverUsage();

latencies.sort((a, b) => a - b);
const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? null;
const expected = total * LISTENERS;
console.log(JSON.stringify({
  sockets: all.length,
  messages: total,
  expected_deliveries: expected,
  delivered: received,
  deliveries_per_s: Math.round(received / sendSeconds),
  p50_ms: pct(50), p99_ms: pct(99), max_ms: latencies.at(-1) ?? null,
  server_cpu_s: Number((end.cpu - start.cpu).toFixed(2)),
  idle_kb_per_socket: Number(idleKbPerSocket.toFixed(1)),
}));
for (const s of all) s.disconnect();
process.exit(0);

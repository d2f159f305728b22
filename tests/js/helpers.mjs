// Shared helpers: REST calls, and Socket.IO connections with either client generation.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
export const clients = {
  v2: require('socket.io-client-v2'),
  v4: require('socket.io-client-v4').io,
};

export const BASE = process.env.PALAVER_URL;
if (!BASE) throw new Error('PALAVER_URL is not set: run the tests with tests/run.sh');

export async function call(method, path, { token, body } = {}) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.Authorisation = token;
  const res = await fetch(BASE + path, { method, headers, body: body && JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

export async function signup(username) {
  const { status, body } = await call('POST', '/new', { body: { username } });
  if (status !== 201) throw new Error(`signup ${username}: ${status}`);
  return { id: body.id, token: body.token, username };
}

export async function createChannel(from, to) {
  const { status, body } = await call('POST', '/create-channel', { token: from.token, body: { to: to.id, type: 1 } });
  if (status !== 201) throw new Error(`create-channel: ${status}`);
  return body.channel_id;
}

// Connect and resolve once the server has accepted the socket.
// `how` picks where credentials go: 'headers' (the spec's way), 'auth' (v3+) or 'query'.
export function connect(version, transport, { token, channels = [], how = 'headers' } = {}) {
  const opts = { transports: [transport], forceNew: true, reconnection: false };
  const list = channels.join(',');
  if (how === 'headers') {
    opts.extraHeaders = {};
    if (token) opts.extraHeaders.Authorisation = token;
    if (list) opts.extraHeaders.channels = list;
  } else if (how === 'auth') {
    opts.auth = { token, channels: list };
  } else {
    opts.query = { token, channels: list };
  }
  const socket = clients[version](BASE, opts);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${version}/${transport}: no connect`)), 5000);
    socket.on('connect', () => { clearTimeout(timer); resolve(socket); });
    socket.on('connect_error', (e) => { clearTimeout(timer); reject(e); });
  });
}

export function nextEvent(socket, name, ms = 3000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${name} event within ${ms} ms`)), ms);
    socket.once(name, (data) => { clearTimeout(timer); resolve(data); });
  });
}

// Collect every `name` event for `ms`, to prove something did not arrive.
export function collect(socket, name, ms = 400) {
  const seen = [];
  const listener = (data) => seen.push(data);
  socket.on(name, listener);
  return new Promise((resolve) => setTimeout(() => { socket.off(name, listener); resolve(seen); }, ms));
}

export function emitAck(socket, name, data, ms = 3000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for ${name}`)), ms);
    socket.emit(name, data, (reply) => { clearTimeout(timer); resolve(reply); });
  });
}

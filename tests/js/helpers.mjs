// Shared helpers: REST calls, Socket.IO connections with either client generation, and plain
// WebSockets. Each takes the server's base URL (`base`), the test server's by default.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
export const clients = {
  v2: require('socket.io-client-v2'),
  v3: require('socket.io-client-v3').io,
  v4: require('socket.io-client-v4').io,
};
const WebSocket = require('ws');
const { MongoClient, ObjectId } = require('mongodb');

export const BASE = process.env.PALAVER_URL;
if (!BASE) throw new Error('PALAVER_URL is not set: run the tests with tests/run.sh');
export const PASSWORD = 'correct horse battery';

export async function call(method, path, { token, body, base = BASE } = {}) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.Authorisation = token;
  const res = await fetch(base + path, { method, headers, body: body && JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

export async function signup(username, base = BASE) {
  const { status, body } = await call('POST', '/new', { body: { username }, base });
  if (status !== 201) throw new Error(`signup ${username}: ${status}`);
  return { id: body.id, token: body.token, username };
}

// A chat's numeric id (what the channels dialect calls it) from its 24-hex id (the chats
// dialect's), read from the server's database: no API gives both for a group.
export async function chatNum(hexId, database = process.env.PALAVER_DATABASE) {
  const client = await new MongoClient(process.env.TEST_MONGODB_URI).connect();
  try {
    const chat = await client.db(database).collection('chats').findOne({ _id: new ObjectId(hexId) });
    return String(chat.num);
  } finally {
    await client.close();
  }
}

export async function createChannel(from, to, base = BASE) {
  const { status, body } = await call('POST', '/create-channel', { token: from.token, body: { to: to.id, type: 1 }, base });
  if (status !== 201) throw new Error(`create-channel: ${status}`);
  return body.channel_id;
}

// A request as the hooks and chats dialects' clients make it: Bearer token, JSON (an empty
// answer reads as null).
export async function bearer(method, path, { token, body, base = BASE } = {}) {
  const headers = body === undefined ? {} : { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(base + path, { method, headers, body: body && JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

// A hooks password account, signed in: its integer id and access token.
export async function hooksAccount(name, base = BASE) {
  const email = `${name}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.org`;
  const signup = await bearer('POST', '/user/signup/', { body: { email, password: PASSWORD, password2: PASSWORD }, base });
  if (signup.status !== 201) throw new Error(`signup ${name}: ${signup.status} ${JSON.stringify(signup.body)}`);
  const signin = await bearer('POST', '/user/signin/', { body: { email, password: PASSWORD }, base });
  if (signin.status !== 200) throw new Error(`signin ${name}: ${signin.status}`);
  return { id: signin.body.user.user_id, token: signin.body.access };
}

// Two hooks users with a confirmed like, and their chat session (the channels DM too).
export async function likedPair(base = BASE) {
  const saliu = await hooksAccount('saliu', base);
  const rebecca = await hooksAccount('rebecca', base);
  const like = await bearer('POST', '/follow/like/', { token: rebecca.token, body: { like: saliu.id }, base });
  if (like.status !== 200) throw new Error(`like: ${like.status}`);
  const answer = await bearer('POST', '/follow/like/respond/', { token: saliu.token, body: { like_instance: like.body.id, action: 'accept' }, base });
  if (answer.status !== 200) throw new Error(`like answered: ${answer.status}`);
  const session = await bearer('POST', '/communication/chat/session/initiate/', { token: saliu.token, body: { user: rebecca.id }, base });
  if (session.status !== 200) throw new Error(`session: ${session.status}`);
  return { saliu, rebecca, chat: String(session.body.id) };
}

// A plain WebSocket with `nextFrame()` (the next JSON text frame) and `closed` (its close
// code and reason, once closed).
export function openSocket(path, token, { base = BASE, query = '' } = {}) {
  const socket = new WebSocket(`${base.replace('http', 'ws')}${path}?token=${token}${query}`);
  const frames = [];
  const waiting = [];
  socket.on('message', (data) => {
    const frame = JSON.parse(data.toString());
    const next = waiting.shift();
    if (next) next(frame); else frames.push(frame);
  });
  socket.closed = new Promise((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  socket.nextFrame = (ms = 3000) => new Promise((resolve, reject) => {
    if (frames.length) return resolve(frames.shift());
    const timer = setTimeout(() => reject(new Error(`no frame within ${ms} ms`)), ms);
    waiting.push((frame) => { clearTimeout(timer); resolve(frame); });
  });
  socket.pending = frames;
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
  });
}

// Connect and resolve once the server has accepted the socket.
// `how` picks where credentials go: 'headers' (the spec's way), 'auth' (v3+) or 'query'.
// `auth` adds fields to the v3+ handshake (e.g. `lastSeen`); `on` attaches event handlers
// before connecting, so events sent right after the connection are not missed.
export function connect(version, transport, { token, channels = [], how = 'headers', base = BASE, auth = {}, on = {} } = {}) {
  const opts = { transports: [transport], forceNew: true, reconnection: false };
  const list = channels.join(',');
  if (how === 'headers') {
    opts.extraHeaders = {};
    if (token) opts.extraHeaders.Authorisation = token;
    if (list) opts.extraHeaders.channels = list;
  } else if (how === 'auth') {
    opts.auth = { token, channels: list, ...auth };
  } else {
    opts.query = { token, channels: list };
  }
  const socket = clients[version](base, opts);
  for (const [event, handler] of Object.entries(on)) socket.on(event, handler);
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

// The hooligram app's side of `/v2`: JSON frames on a plain WebSocket, ids that are
// millisecond timestamps, a phone number of its own. Every frame received waits in `inbox`
// until a test takes it, and stays in `heard`. With `echo` on it behaves like the real client once signed in: it
// sends every frame it receives straight back.
let lastFrameId = 0;
const frameId = () => String(lastFrameId = Math.max(Date.now(), lastFrameId + 1));

export class Hooligram {
  static async open({ base = BASE, phone } = {}) {
    const socket = new WebSocket(`${base.replace('http', 'ws')}/v2`);
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    return new Hooligram(socket, phone);
  }

  constructor(socket, phone) {
    this.socket = socket;
    this.phone = phone || { country_code: '65', phone_number: `9${String(Math.floor(Math.random() * 1e9)).padStart(9, '0')}` };
    this.sid = `${this.phone.country_code}.${this.phone.phone_number}`;
    this.code = '';
    this.echo = false;
    this.inbox = [];
    this.waiting = [];
    this.heard = [];
    socket.on('message', (data) => {
      if (this.echo) socket.send(data.toString());
      this.heard.push(data.toString());
      this.inbox.push(JSON.parse(data.toString()));
      for (const wait of [...this.waiting]) wait();
    });
  }

  send(type, payload, id = frameId()) {
    this.socket.send(JSON.stringify({ id, payload, type }));
    return id;
  }

  // The first frame in the inbox that `matches`, taken out of it.
  take(matches, what, ms = 5000) {
    return new Promise((resolve, reject) => {
      const look = () => {
        const at = this.inbox.findIndex(matches);
        if (at < 0) return false;
        this.waiting = this.waiting.filter((w) => w !== look);
        clearTimeout(timer);
        resolve(this.inbox.splice(at, 1)[0]);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiting = this.waiting.filter((w) => w !== look);
        reject(new Error(`${this.sid}: no ${what} within ${ms} ms; inbox ${JSON.stringify(this.inbox)}`));
      }, ms);
      if (!look()) this.waiting.push(look);
    });
  }

  async ask(type, payload) {
    const id = this.send(type, payload);
    return this.take((f) => f.id === id, `answer to ${type}`);
  }

  async ok(type, payload) {
    const answer = await this.ask(type, payload);
    if (answer.type !== type.replace(/_REQUEST$/, '_SUCCESS')) throw new Error(`${type}: ${JSON.stringify(answer)}`);
    return answer.payload;
  }

  async fails(type, payload) {
    const answer = await this.ask(type, payload);
    if (answer.type !== type.replace(/_REQUEST$/, '_FAILURE')) throw new Error(`${type}: ${JSON.stringify(answer)}`);
    return answer.payload.errors;
  }

  delivery(type, ms) {
    return this.take((f) => f.type === type, type, ms);
  }

  // Every frame that arrives within `ms` on top of what is waiting, all taken.
  async quiet(ms = 800) {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return this.inbox.splice(0);
  }

  // Ask for a code, read it from the SMS stand-in and submit it, as a fresh install does.
  async verify() {
    await this.ok('VERIFICATION_REQUEST_CODE_REQUEST', this.phone);
    const to = encodeURIComponent(`+${this.sid.replace('.', '')}`);
    const sent = await (await fetch(`${process.env.FAKE_SMS_URL}/sent?to=${to}`)).json();
    this.code = sent.at(-1).code;
    await this.ok('VERIFICATION_SUBMIT_CODE_REQUEST', { verification_code: this.code });
  }

  signIn() {
    return this.ok('AUTHORIZATION_SIGN_IN_REQUEST', { ...this.phone, verification_code: this.code });
  }

  // The same user on a new socket, signed in, echoing like the real client.
  async again(base = BASE) {
    const app = await Hooligram.open({ base, phone: this.phone });
    app.code = this.code;
    await app.signIn();
    app.echo = true;
    return app;
  }

  ack(messageId) {
    this.send('MESSAGING_DELIVER_SUCCESS', { message_id: messageId });
  }

  close() {
    this.socket.close();
  }
}

// A verified and signed-in hooligram user that echoes like the real client.
export async function hooligramUser(base = BASE) {
  const app = await Hooligram.open({ base });
  await app.verify();
  await app.signIn();
  app.echo = true;
  return app;
}

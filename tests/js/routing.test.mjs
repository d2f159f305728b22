// Routing by interest across three nodes on one Redis: a node hears on Redis only what
// concerns the users it holds, read from each node's own metrics. A node with no member of a
// chat receives nothing for it, a node with one receives each message once, and a node starts
// hearing a chat when one of its users joins it (without reconnecting) and stops a while after
// the last one leaves. A node that falls behind closes its clients' transports, and they come
// back and catch up. With TEST_REDIS_CLUSTER=1, on a three-master Redis Cluster.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { signup, connect, nextEvent, collect, emitAck, likedPair, clients } from './helpers.mjs';
import { sleep, sharedRedis, startPalaver, connections } from './nodes.mjs';

const DATABASE = `routing_${process.pid}`;
const { track, closeAll } = connections();
let redis;
let one;
let two;
let three;

before(async () => {
  redis = await sharedRedis('routing');
  const shared = { REDIS_URL: redis.url, MONGODB_DATABASE: DATABASE };
  [one, two, three] = await Promise.all(
    ['one', 'two', 'three'].map((name) => startPalaver(`routing-${name}`, shared)),
  );
});

after(async () => {
  closeAll();
  await Promise.all([one, two, three].filter(Boolean).map((node) => node.stop()));
  await redis?.stop();
});

// A node's own figure from its /metrics (0 when not recorded yet).
async function metric(node, name) {
  const text = await (await fetch(`${node.base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : 0;
}
const received = (node) => metric(node, 'palaver_redis_received_total');
const channels = (node) => metric(node, 'palaver_redis_channels');

// Until `check` holds, for at most `ms`.
async function eventually(check, ms = 5000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(100);
  }
  return false;
}

async function chatsUser(name, base) {
  const account = await signup(`${name}-${Date.now() % 100000}`, base);
  const id = JSON.parse(Buffer.from(account.token.split('.')[1], 'base64url')).sub;
  return { id, token: account.token };
}

async function api(node, method, path, who, body) {
  const res = await fetch(node.base + path, {
    method,
    headers: { authorization: `Bearer ${who.token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

test('a node hears each message of a chat it holds a member of once, and nothing of the others', async () => {
  const { saliu, rebecca, chat } = await likedPair(one.base);
  const stranger = await chatsUser('stranger', three.base);
  // Rebecca on node one, Saliu on node two over long-polling, a stranger on node three.
  const rebeccaIo = track(await connect('v4', 'websocket', { token: rebecca.token, channels: [chat], how: 'auth', base: one.base }));
  const saliuIo = track(await connect('v4', 'polling', { token: saliu.token, channels: [chat], how: 'auth', base: two.base }));
  track(await connect('v4', 'websocket', { token: stranger.token, how: 'auth', base: three.base }));
  await sleep(300);
  const before = { two: await received(two), three: await received(three), bytes: await metric(two, 'palaver_redis_received_bytes_total') };

  const count = 20;
  const heard = collect(saliuIo, 'message', 4000);
  for (let i = 0; i < count; i++) {
    await emitAck(rebeccaIo, 'message', { content: `routed ${i}`, channel: chat });
  }
  const messages = await heard;
  assert.deepEqual(messages.map((m) => m.content), [...Array(count).keys()].map((i) => `routed ${i}`));

  const after = { two: await received(two), three: await received(three) };
  const bytes = (await metric(two, 'palaver_redis_received_bytes_total')) - before.bytes;
  console.log(`# node two received ${after.two - before.two} Redis messages (${Math.round(bytes / count)} bytes each) for ${count} messages; node three ${after.three - before.three}`);
  assert.equal(after.two - before.two, count, 'node two: each message once');
  assert.equal(after.three - before.three, 0, 'node three: nothing of a chat it holds no member of');
});

test('a node starts hearing a chat when its user joins, and stops once the last one leaves', async () => {
  const owner = await chatsUser('owner', one.base);
  const bea = await chatsUser('bea', one.base);
  const carl = await chatsUser('carl', one.base);
  const group = await api(one, 'POST', '/chats', owner, { isGroup: true, name: 'Routed', category: 'Courses', participants: [] });
  assert.equal(group.status, 201, JSON.stringify(group.body));
  const path = `/chats/${group.body.chat._id}`;
  // Bea is connected to node two only; everything else goes through node one.
  const beaIo = track(await connect('v4', 'websocket', { token: bea.token, how: 'auth', base: two.base }));
  await sleep(300);
  const listening = await channels(two);

  // She joins through node one: her socket on node two is told, and node two listens on the
  // chat from then on, so the very next change reaches her.
  let joined = nextEvent(beaIo, 'chat-joined');
  let res = await api(one, 'POST', `${path}/participants`, bea, {});
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.equal((await joined).participant.user, bea.id);
  assert.equal(await channels(two), listening + 1, 'node two listens on the chat');
  res = await api(one, 'POST', `${path}/participants`, carl, {});
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const left = nextEvent(beaIo, 'chat-participant-removed');
  res = await api(one, 'DELETE', `${path}/participants/${carl.id}`, carl, {});
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal((await left).participant.user, carl.id, 'heard through the chat, without reconnecting');

  // She leaves: node two stops listening on the chat a moment later, and hears nothing more
  // of it.
  res = await api(one, 'DELETE', `${path}/participants/${bea.id}`, bea, {});
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.ok(await eventually(async () => (await channels(two)) === listening), 'node two let the chat go');
  const before = await received(two);
  const quiet = collect(beaIo, 'chat-participant-removed', 600);
  const dan = await chatsUser('dan', one.base);
  res = await api(one, 'POST', `${path}/participants`, dan, {});
  assert.equal(res.status, 201, JSON.stringify(res.body));
  res = await api(one, 'DELETE', `${path}/participants/${dan.id}`, dan, {});
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(await quiet, []);
  assert.equal(await received(two), before, 'nothing of the chat reaches node two');
});

// A node that stalls (stopped with SIGSTOP) while a chat's messages keep coming, and holds at
// most one message it has not handed over (REDIS_BACKLOG=1), falls behind when it resumes. It
// closes its Socket.IO clients' transports rather than skip messages: socket.io clients, over
// WebSocket and over long-polling, see their transport close, reconnect by themselves and catch up
// with `lastSeen`. Each has every message, in order; a message heard both live and in the
// catch-up may come twice, with its id, but none is missing.
test('a node that falls behind closes its clients\' transports, and they reconnect and catch up', async () => {
  const four = await startPalaver('routing-four', { REDIS_URL: redis.url, MONGODB_DATABASE: DATABASE, REDIS_BACKLOG: '1' });
  try {
    const { saliu, rebecca, chat } = await likedPair(one.base);
    const rebeccaIo = track(await connect('v4', 'websocket', { token: rebecca.token, channels: [chat], how: 'auth', base: one.base }));
    const receivers = await Promise.all(['websocket', 'polling'].map(async (transport) => {
      const seen = [];
      const events = [];
      const auth = (cb) => cb({ token: saliu.token, channels: chat, ...(seen.length ? { lastSeen: { [chat]: seen.at(-1) } } : {}) });
      const socket = track(clients.v4(four.base, { transports: [transport], forceNew: true, auth, reconnectionDelay: 100, reconnectionDelayMax: 500 }));
      socket.on('message', (m) => seen.push(m.id));
      socket.on('connect', () => events.push('connect'));
      socket.on('disconnect', (why) => events.push(`disconnect: ${why}`));
      await nextEvent(socket, 'connect', 5000);
      return { transport, seen, events };
    }));
    await sleep(300);

    const sent = [];
    const send = async (n) => {
      for (let i = 0; i < n; i++) {
        const ack = await emitAck(rebeccaIo, 'message', { content: `stalled ${sent.length}`, channel: chat });
        assert.ok(ack.id, JSON.stringify(ack));
        sent.push(ack.id);
      }
    };
    await send(3);
    assert.ok(await eventually(() => receivers.every((r) => r.seen.length === 3)), 'heard before the stall');
    const behind = await metric(four, 'palaver_redis_fell_behind_total');

    // Node four stalls while forty messages are sent; Redis keeps them for it.
    four.child.kill('SIGSTOP');
    try {
      await send(40);
    } finally {
      four.child.kill('SIGCONT');
    }
    const caughtUp = await eventually(() => receivers.every((r) => sent.every((id) => r.seen.includes(id))), 15000);
    for (const r of receivers) {
      const repeated = r.seen.length - new Set(r.seen).size;
      console.log(`# ${r.transport}: ${r.events.join(', ')}; heard ${r.seen.length} (${repeated} twice) of ${sent.length}`);
    }
    assert.ok(caughtUp, 'every receiver has every message');
    assert.ok(await metric(four, 'palaver_redis_fell_behind_total') > behind, 'node four fell behind');
    for (const r of receivers) {
      assert.deepEqual([...new Set(r.seen)], sent, `${r.transport}: every message, in order`);
      // Not `io server disconnect`, after which socket.io clients stay away. A long-polling
      // client hears the close on its pending poll, or has its next request refused.
      const [first, why, again] = r.events;
      assert.deepEqual([first, again], ['connect', 'connect'], r.transport);
      assert.match(why, /^disconnect: transport (close|error)$/, r.transport);
    }
  } finally {
    await four.stop();
  }
});

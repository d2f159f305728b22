// Routing by interest across three nodes on one Redis: a node hears on Redis only what
// concerns the users it holds, read from each node's own metrics. A node with no member of a
// chat receives nothing for it, a node with one receives each message once, and a node starts
// hearing a chat when one of its users joins it (without reconnecting) and stops a while after
// the last one leaves. With TEST_REDIS_CLUSTER=1, on a three-master Redis Cluster.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { signup, connect, nextEvent, collect, emitAck, likedPair } from './helpers.mjs';
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

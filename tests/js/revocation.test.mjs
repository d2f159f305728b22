// No connection outlives a sign-out, whatever the order of events: sockets of every kind are
// opened on one node at the same moment as the user signs out through the other, many times
// over, and none is left open as that user. A socket opened with a token already revoked is
// refused (or, on the channels dialect's path, connects hearing nothing, as its spec says).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { clients, bearer, emitAck, likedPair, openSocket, hooligramUser } from './helpers.mjs';
import { JWT_SECRET, env, sleep, twoNodes, connections } from './nodes.mjs';

const DATABASE = `revocation_${process.pid}`;
const ROUNDS = 12;

let cluster;
const { track, closeAll } = connections();

before(async () => {
  cluster = await twoNodes('revocation', { MONGODB_DATABASE: DATABASE });
});

after(async () => {
  closeAll();
  await cluster?.stop();
});

// A Socket.IO connection that resolves once connected, and rejects if refused, or if closed
// before it connected: a sign-out can reach a socket while its handshake is still being
// answered, and a client told to disconnect then hears neither `connect` nor `connect_error`.
function socketIo(base, path, token) {
  const socket = clients.v4(base, { path, auth: { token }, transports: ['websocket'], forceNew: true, reconnection: false });
  track(socket);
  return new Promise((resolve, reject) => {
    socket.on('connect', () => resolve(socket));
    socket.on('connect_error', reject);
    socket.on('disconnect', (why) => reject(new Error(`disconnected before connecting: ${why}`)));
    socket.io.on('close', (why) => reject(new Error(`closed before connecting: ${why}`)));
  });
}

// Whether a plain WebSocket is still open once what was sent to it has arrived.
const stillOpen = (socket) => socket.readyState === socket.OPEN;

test('sockets opened as the user signs out on another node are all closed or refused', async () => {
  const { one, two } = cluster;
  for (let round = 0; round < ROUNDS; round++) {
    const { saliu, rebecca } = await likedPair(one.base);
    // Each resolves to the open connection, or to null when it was refused.
    const refused = () => null;
    const opening = {
      channels: socketIo(one.base, '/socket.io', saliu.token).catch(refused),
      feed: socketIo(one.base, '/chat/socket', saliu.token).catch(refused),
      notifications: openSocket('/ws/notification/', saliu.token, { base: one.base }).then(track, refused),
      chat: openSocket(`/ws/chat/${rebecca.id}/`, saliu.token, { base: one.base }).then(track, refused),
    };
    // The sign-out lands anywhere from before the first socket is checked to after the last.
    await sleep(round % 4 * 5);
    const out = await bearer('POST', '/user/signout/', { token: saliu.token, base: two.base });
    assert.equal(out.status, 200);
    const opened = {};
    for (const [kind, open] of Object.entries(opening)) opened[kind] = await open;
    await sleep(800); // what the sign-out sent across the nodes has arrived

    const { channels, feed, notifications, chat } = opened;
    if (channels?.connected) {
      // Only as nobody: the token was revoked before its handshake.
      const answer = await emitAck(channels, 'messageDeleted', { channel: '1', id: '1' });
      assert.equal(answer.status, 401, `round ${round}: a channels socket is still signed in`);
    }
    assert.ok(!feed?.connected, `round ${round}: the requests feed is still open`);
    for (const [kind, socket] of [['ws/notification/', notifications], ['ws/chat/', chat]]) {
      if (!socket) continue;
      assert.ok(!stillOpen(socket), `round ${round}: ${kind} is still open`);
      assert.equal((await socket.closed).code, 4001, `round ${round}: ${kind}`);
    }
    closeAll();
  }
});

// A token for a user of the hooligram dialect, who signs in with a phone and has none.
function tokenFor(user) {
  const encode = (part) => Buffer.from(JSON.stringify(part)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    sub: user._id.toHexString(), ver: user.token_version, iat: now, exp: now + 600,
    token_type: 'access', user_id: user.num, jti: randomBytes(16).toString('hex'),
  };
  const unsigned = `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode(claims)}`;
  return `${unsigned}.${createHmac('sha256', JWT_SECRET).update(unsigned).digest('base64url')}`;
}

test('a hooligram socket signed in is closed when its user signs out on another node', async () => {
  const { one, two } = cluster;
  const app = track(await hooligramUser(one.base));
  const database = await new MongoClient(env('TEST_MONGODB_URI')).connect();
  let user;
  try {
    const phone = `${app.phone.country_code}.${app.phone.phone_number}`;
    user = await database.db(DATABASE).collection('users').findOne({ phone });
  } finally {
    await database.close();
  }
  const closed = new Promise((resolve) => app.socket.once('close', (code) => resolve(code)));
  const out = await bearer('POST', '/user/signout/', { token: tokenFor(user), base: two.base });
  assert.equal(out.status, 200);
  assert.equal(await closed, 4001);
});

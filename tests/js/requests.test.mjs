// The requests dialect with its client's feed: socket.io-client 4 at `/chat/socket` (the raw
// JWT in `auth.token`) hears `message` and `totals` live while two users go through a request,
// the pending list, accepting, messages, reading and totals; a message sent from the channels
// dialect's socket arrives in this dialect's shape; an offline user is pushed exactly once per
// event, in this dialect's words.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, clients, signup, connect, nextEvent, collect, emitAck, chatNum } from './helpers.mjs';

const FCM = process.env.FAKE_FCM_URL;
if (!FCM) throw new Error('FAKE_FCM_URL is not set: run the tests with tests/run.sh');

async function api(method, path, who, body) {
  const headers = { authorization: who.token };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(BASE + path, { method, headers, body: body && JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

function feed(who, transports = ['websocket', 'polling']) {
  const socket = clients.v4(BASE, {
    path: '/chat/socket', auth: { token: who.token }, transports, forceNew: true, reconnection: false,
  });
  return new Promise((resolve, reject) => {
    socket.on('connect', () => resolve(socket));
    socket.on('connect_error', reject);
  });
}

// The first `totals` event that satisfies `wanted` (totals are sent after each change, so an
// earlier change's may come first).
function totalsWhere(socket, wanted, ms = 3000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { socket.off('totals', listener); reject(new Error('no such totals')); }, ms);
    const listener = (totals) => {
      if (!wanted(totals)) return;
      clearTimeout(timer);
      socket.off('totals', listener);
      resolve(totals);
    };
    socket.on('totals', listener);
  });
}

async function pushesTo(device, atLeast) {
  for (let i = 0; i < 40; i++) {
    const sent = (await (await fetch(`${FCM}/sent`)).json()).filter((s) => s.body.message.token === device);
    if (sent.length >= atLeast) {
      await new Promise((r) => setTimeout(r, 300));
      return (await (await fetch(`${FCM}/sent`)).json()).filter((s) => s.body.message.token === device);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return [];
}

test('a request over REST, heard live on /chat/socket, and a message from another dialect', async () => {
  const ada = await signup('ada');
  const bob = await signup('bob');
  const bobFeed = await feed(bob);
  const sockets = [bobFeed];
  try {
    // Asked: Bob's totals change.
    let totals = totalsWhere(bobFeed, (t) => t.totalPendingRequests === 1);
    const asked = await api('POST', '/chat', ada, { userId: Number(bob.id) });
    assert.equal(asked.status, 201);
    const chatId = asked.body.id;
    await totals;

    // Ada's preview reaches Bob's feed in this dialect's shape, then his totals.
    const heard = nextEvent(bobFeed, 'message');
    totals = totalsWhere(bobFeed, (t) => t.totalUnreadMessages === 1);
    const sent = await api('POST', `/chat/${chatId}`, ada, { text: 'hello bob', id: '1700000000001' });
    assert.equal(sent.status, 201);
    const message = await heard;
    assert.equal(message.id, sent.body.id);
    assert.equal(message.chatId, chatId);
    assert.equal(message.text, 'hello bob');
    assert.equal(message.userId, Number(ada.id));
    assert.equal(message.user.username, 'ada');
    assert.deepEqual(await totals, {
      totalPendingRequest: 1, totalPendingRequests: 1, totalUnreadMessages: 1, totalUnreadChats: 1,
    });

    // Bob finds it pending and accepts.
    const pending = await api('GET', '/chat/pending?skip=0&limit=15', bob);
    assert.equal(pending.body[0].chatId, chatId);
    assert.equal(pending.body[0].message.text, 'hello bob');
    totals = totalsWhere(bobFeed, (t) => t.totalPendingRequests === 0);
    const accepted = await api('POST', `/chat/${chatId}/accept`, bob);
    assert.equal(accepted.body.status, 'active');
    await totals;

    // Ada writes from the channels dialect's socket: Bob's feed hears it as this dialect's.
    const channel = await chatNum(chatId);
    const adaChannels = await connect('v4', 'websocket', { token: ada.token, channels: [channel], how: 'auth' });
    sockets.push(adaChannels);
    const across = nextEvent(bobFeed, 'message');
    const twoUnread = totalsWhere(bobFeed, (t) => t.totalUnreadMessages === 2);
    const posted = await emitAck(adaChannels, 'message', { content: 'from the channels app', channel });
    const crossed = await across;
    assert.equal(crossed.text, 'from the channels app');
    assert.equal(crossed.chatId, chatId);
    assert.equal(crossed.userId, Number(ada.id));
    assert.match(crossed.id, /^[0-9a-f]{24}$/);
    assert.notEqual(crossed.id, posted.id, 'each dialect names the message its own way');

    // Reading brings his unread total to nothing.
    await twoUnread;
    totals = totalsWhere(bobFeed, (t) => t.totalUnreadMessages === 0);
    const read = await api('POST', `/chat/${chatId}/read`, bob);
    assert.deepEqual(read.body, { success: true, message: 'All messages have been marked as read.' });
    assert.deepEqual(await totals, {
      totalPendingRequest: 0, totalPendingRequests: 0, totalUnreadMessages: 0, totalUnreadChats: 0,
    });
    const messages = await api('GET', `/chat/${chatId}/messages`, bob);
    assert.deepEqual(messages.body.map((m) => m.text), ['from the channels app', 'hello bob']);

    // A socket without a token is refused.
    await assert.rejects(new Promise((resolve, reject) => {
      const anonymous = clients.v4(BASE, { path: '/chat/socket', transports: ['websocket'], forceNew: true, reconnection: false });
      anonymous.on('connect', () => { anonymous.close(); resolve(); });
      anonymous.on('connect_error', (e) => { anonymous.close(); reject(e); });
    }));
  } finally {
    for (const socket of sockets) socket.close();
  }
});

// The client's default starts with long-polling (handshake GET, then POSTs and GETs with the
// session id) and upgrades to WebSocket: every step must reach the same Engine.IO server.
for (const transports of [['polling'], ['polling', 'websocket']]) {
  test(`the feed over ${transports.join(' then ')}: connects, hears, and stays`, async () => {
    const ada = await signup('ada');
    const bob = await signup('bob');
    const bobFeed = await feed(bob, transports);
    try {
      if (transports.length > 1 && bobFeed.io.engine.transport.name !== 'websocket') {
        await new Promise((resolve) => bobFeed.io.engine.once('upgrade', resolve));
      }
      assert.equal(bobFeed.io.engine.transport.name, transports.at(-1));
      const heard = nextEvent(bobFeed, 'message');
      const asked = await api('POST', '/chat', ada, { userId: Number(bob.id) });
      const sent = await api('POST', `/chat/${asked.body.id}`, ada, { text: `over ${transports}` });
      assert.equal(sent.status, 201);
      assert.equal((await heard).text, `over ${transports}`);
      assert.ok(bobFeed.connected);
    } finally {
      bobFeed.close();
    }
  });
}

test('an offline user is pushed once per request event, in this dialect\'s words', async () => {
  const ada = await signup('ada');
  const carl = await signup('carl');
  const device = `carl-requests-${Date.now()}`;
  const registered = await api('POST', '/chat/devices', carl, { token: device, platform: 'android' });
  assert.equal(registered.status, 201);

  const asked = await api('POST', '/chat', ada, { userId: Number(carl.id) });
  let sent = await pushesTo(device, 1);
  assert.equal(sent.length, 1, JSON.stringify(sent));
  assert.deepEqual(sent[0].body.message.data, { chatId: asked.body.id, type: 'chat_request' });
  assert.equal(sent[0].body.message.notification.title, 'New chat request');

  await api('POST', `/chat/${asked.body.id}`, ada, { text: 'are you there?' });
  sent = await pushesTo(device, 2);
  assert.equal(sent.length, 2, JSON.stringify(sent));
  assert.deepEqual(sent[1].body.message.data, { chatId: asked.body.id, type: 'message' });
  assert.deepEqual(sent[1].body.message.notification, { title: 'ada', body: 'are you there?' });

  // Online on the feed: no push.
  const carlFeed = await feed(carl);
  try {
    const quiet = collect(carlFeed, 'message', 800);
    await api('POST', `/chat/${asked.body.id}`, ada, { text: 'and now?' });
    assert.equal((await quiet).length, 1);
    assert.equal((await pushesTo(device, 2)).length, 2, 'no push while the feed is open');
  } finally {
    carlFeed.close();
  }
});

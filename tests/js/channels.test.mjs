// The channels spec's whole flow, with socket.io-client 2.x (protocol v4) and 4.x (v5), over
// polling and WebSocket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { call, signup, createChannel, connect, nextEvent, collect, emitAck } from './helpers.mjs';

const combos = [];
for (const version of ['v4', 'v2']) for (const transport of ['websocket', 'polling']) combos.push([version, transport]);

for (const [version, transport] of combos) {
  test(`channels flow with socket.io-client ${version} over ${transport}`, async () => {
    const ada = await signup('Starman');
    const bob = await signup('Crazy Blob');
    const sockets = [];
    try {
      // Bob is online before the channel exists and hears channelCreate live.
      const bobEarly = await connect(version, transport, { token: bob.token });
      sockets.push(bobEarly);
      const created = nextEvent(bobEarly, 'channelCreate');
      const channel = await createChannel(ada, bob);
      assert.deepEqual(await created, { channel_id: channel });

      // Both connect the spec's way: token and channel ids in the headers.
      const adaSocket = await connect(version, transport, { token: ada.token, channels: [channel] });
      const adaOther = await connect(version, transport, { token: ada.token, channels: [channel] });
      const bobSocket = await connect(version, transport, { token: bob.token, channels: ['1', channel] });
      sockets.push(adaSocket, adaOther, bobSocket);

      const atBob = nextEvent(bobSocket, 'message');
      const atAdaOther = nextEvent(adaOther, 'message');
      const atBobEarly = nextEvent(bobEarly, 'message');
      const stored = await emitAck(adaSocket, 'message', { content: 'hello world', channel });
      const expected = {
        author: { avatarURL: '', id: ada.id, username: 'Starman' },
        channel_id: channel,
        content: 'hello world',
        id: stored.id,
      };
      assert.match(stored.id, /^\d+$/);
      assert.deepEqual(stored, expected);
      assert.deepEqual(await atBob, expected);
      assert.deepEqual(await atAdaOther, expected);
      // The socket bob opened before the channel existed joined it when it was created.
      assert.deepEqual(await atBobEarly, expected);

      // History has it, with its author.
      const history = await call('GET', `/messages?channel_id=${channel}`, { token: bob.token });
      assert.equal(history.status, 200);
      assert.deepEqual(history.body.messages.at(-1), expected);

      // Only the author may delete; everyone in the channel hears the deletion.
      const refused = await emitAck(bobSocket, 'messageDeleted', { channel, id: stored.id });
      assert.equal(refused.status, 403);
      const deletedAtBob = nextEvent(bobSocket, 'messageDeleted');
      const deletedAtAda = nextEvent(adaOther, 'messageDeleted');
      const deleted = await emitAck(adaSocket, 'messageDeleted', { channel, id: stored.id });
      assert.deepEqual(deleted, { channel, id: stored.id });
      assert.deepEqual(await deletedAtBob, { channel, id: stored.id });
      assert.deepEqual(await deletedAtAda, { channel, id: stored.id });
      const after = await call('GET', `/messages?channel_id=${channel}`, { token: bob.token });
      assert.equal(after.body.messages.length, 0);
    } finally {
      for (const s of sockets) s.disconnect();
    }
  });
}

test('a socket hears a channel created while it is connected without reconnecting', async () => {
  const ada = await signup('ada');
  const bob = await signup('bob');
  const bobSocket = await connect('v4', 'websocket', { token: bob.token });
  try {
    const channel = await createChannel(ada, bob);
    const adaSocket = await connect('v4', 'websocket', { token: ada.token, channels: [channel] });
    const heard = nextEvent(bobSocket, 'message');
    await emitAck(adaSocket, 'message', { content: 'hi', channel });
    assert.equal((await heard).content, 'hi');
    adaSocket.disconnect();
  } finally {
    bobSocket.disconnect();
  }
});

test('credentials and channels also work in the auth payload (v4) and the query (v2)', async () => {
  const ada = await signup('ada');
  const bob = await signup('bob');
  const channel = await createChannel(ada, bob);
  const viaAuth = await connect('v4', 'websocket', { token: ada.token, channels: [channel], how: 'auth' });
  const viaQuery = await connect('v2', 'polling', { token: bob.token, channels: [channel], how: 'query' });
  try {
    const heard = nextEvent(viaQuery, 'message');
    await emitAck(viaAuth, 'message', { content: 'from auth', channel });
    assert.equal((await heard).content, 'from auth');
  } finally {
    viaAuth.disconnect();
    viaQuery.disconnect();
  }
});

test('an invalid or missing token still connects but receives nothing and cannot send', async () => {
  const ada = await signup('ada');
  const bob = await signup('bob');
  const channel = await createChannel(ada, bob);
  const adaSocket = await connect('v4', 'websocket', { token: ada.token, channels: [channel] });
  const forged = await connect('v4', 'websocket', { token: 'forged.token.value', channels: [channel] });
  const anonymous = await connect('v2', 'websocket', { channels: [channel] });
  try {
    const forgedSeen = collect(forged, 'message');
    const anonSeen = collect(anonymous, 'message');
    await emitAck(adaSocket, 'message', { content: 'secret', channel });
    assert.deepEqual(await forgedSeen, []);
    assert.deepEqual(await anonSeen, []);
    const reply = await emitAck(forged, 'message', { content: 'let me in', channel });
    assert.equal(reply.status, 401);
  } finally {
    for (const s of [adaSocket, forged, anonymous]) s.disconnect();
  }
});

test('a user who lists a channel they are not in hears nothing from it', async () => {
  const ada = await signup('ada');
  const bob = await signup('bob');
  const eve = await signup('eve');
  const channel = await createChannel(ada, bob);
  const adaSocket = await connect('v4', 'polling', { token: ada.token, channels: [channel] });
  const eveSocket = await connect('v4', 'polling', { token: eve.token, channels: [channel] });
  try {
    const seen = collect(eveSocket, 'message');
    await emitAck(adaSocket, 'message', { content: 'private', channel });
    assert.deepEqual(await seen, []);
    const reply = await emitAck(eveSocket, 'message', { content: 'intrude', channel });
    assert.equal(reply.status, 404);
  } finally {
    adaSocket.disconnect();
    eveSocket.disconnect();
  }
});

test('malformed events get an error and are never broadcast', async () => {
  const ada = await signup('ada');
  const bob = await signup('bob');
  const channel = await createChannel(ada, bob);
  const adaSocket = await connect('v4', 'websocket', { token: ada.token, channels: [channel] });
  const bobSocket = await connect('v2', 'websocket', { token: bob.token, channels: [channel] });
  try {
    const seen = collect(bobSocket, 'message', 800);
    const cases = [
      [{ channel }, 400],
      [{ content: 'hi' }, 400],
      ['just a string', 400],
      [{ content: '   ', channel }, 400],
      [{ content: 'x'.repeat(4001), channel }, 400],
      [{ content: 'hi', channel: 'abc' }, 400],
      [{ content: 'hi', channel: '999999999' }, 404],
    ];
    for (const [data, status] of cases) {
      const reply = await emitAck(adaSocket, 'message', data);
      assert.equal(reply.status, status, JSON.stringify(data).slice(0, 60));
      assert.equal(reply.event, 'message');
      assert.equal(typeof reply.error, 'string');
    }
    // Without an ack the sender gets an `error` event instead.
    const error = nextEvent(adaSocket, 'error');
    adaSocket.emit('message', { channel });
    assert.equal((await error).status, 400);
    // Deleting a message that does not exist is reported too.
    const missing = await emitAck(adaSocket, 'messageDeleted', { channel, id: '123456789' });
    assert.equal(missing.status, 404);
    assert.deepEqual(await seen, []);
    // The connection survived all of it.
    const ok = await emitAck(adaSocket, 'message', { content: 'still here', channel });
    assert.equal(ok.content, 'still here');
  } finally {
    adaSocket.disconnect();
    bobSocket.disconnect();
  }
});

test('a socket that floods is slowed down with 429 and only what was accepted is delivered', async () => {
  const ada = await signup('ada');
  const bob = await signup('bob');
  const channel = await createChannel(ada, bob);
  const adaSocket = await connect('v4', 'websocket', { token: ada.token, channels: [channel] });
  const bobSocket = await connect('v4', 'websocket', { token: bob.token, channels: [channel] });
  try {
    const seen = collect(bobSocket, 'message', 1500);
    const replies = await Promise.all(
      Array.from({ length: 100 }, (_, i) => emitAck(adaSocket, 'message', { content: `flood ${i}`, channel })),
    );
    const accepted = replies.filter((r) => r.content);
    const limited = replies.filter((r) => r.status === 429);
    assert.equal(accepted.length + limited.length, 100);
    assert.ok(limited.length >= 30, `only ${limited.length} limited`);
    assert.equal((await seen).length, accepted.length);
  } finally {
    adaSocket.disconnect();
    bobSocket.disconnect();
  }
});

// The hooligram React Native client's life, replayed frame by frame with the `ws` package:
// a fresh install verifying its phone, the echo of every frame it receives once signed in,
// keep-alives, direct messages and groups, live and stored deliveries with their receipts,
// leaving, and a chat shared with a channels (Socket.IO) user.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Hooligram, hooligramUser, signup, connect, nextEvent, emitAck } from './helpers.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const DATE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;

// Run `body` with users that are closed afterwards whatever happens.
async function withApps(apps, body) {
  try {
    return await body(...apps);
  } finally {
    for (const app of apps) app.close();
  }
}

test('a fresh install verifies, signs in on the same socket, and nothing answers its echoes', async () => {
  const app = await Hooligram.open();
  await withApps([app], async () => {
    // Keep-alive works before sign-in; without an id it fails with an empty payload.
    const alive = app.send('CONN_KEEP_ALIVE_REQUEST', {});
    assert.deepEqual(await app.take((f) => f.id === alive, 'keep-alive'), { id: alive, payload: {}, type: 'CONN_KEEP_ALIVE_SUCCESS' });
    app.socket.send(JSON.stringify({ payload: {}, type: 'CONN_KEEP_ALIVE_REQUEST' }));
    assert.deepEqual(await app.delivery('CONN_KEEP_ALIVE_FAILURE'), { id: '', payload: {}, type: 'CONN_KEEP_ALIVE_FAILURE' });

    assert.deepEqual(await app.fails('MESSAGING_SEND_REQUEST', { group_id: 1, content: 'hi' }), ['not signed in']);
    await app.verify();
    assert.match(app.code, /^\d{4,6}$/);
    // The real client signs in about two seconds after the code is accepted.
    await sleep(2000);
    assert.deepEqual(await app.signIn(), {});
    // From here the client sends back every frame it receives, starting with those it got
    // before signing in, and adds frames of its own.
    app.echo = true;
    assert.equal(app.heard.length, 6);
    for (const frame of app.heard) app.socket.send(frame);
    app.send('WEBSOCKET_OPEN', { host: 'localhost:8080' });
    app.send('GO_TO_HOME', {});
    app.socket.send(JSON.stringify({ payload: {}, type: 'SIGN_IN' }));
    app.socket.send('not json');
    // A new user has no groups and no messages: the echoes of the answers above and the
    // client's own frames get no reply, so nothing more ever arrives.
    assert.deepEqual(await app.quiet(1500), []);

    const again = app.send('CONN_KEEP_ALIVE_REQUEST', {});
    assert.equal((await app.take((f) => f.id === again, 'keep-alive')).type, 'CONN_KEEP_ALIVE_SUCCESS');
    assert.deepEqual(await app.quiet(800), []);
  });
});

test('a direct message and a group, created by two and three users, deliver live and are acknowledged', async () => {
  const apps = await Promise.all([hooligramUser(), hooligramUser(), hooligramUser()]);
  await withApps(apps, async (ann, bob, cat) => {
    // A direct message: both get the group, the creator included, and asking again for the
    // same pair answers the same group.
    const dm = await ann.ok('GROUP_CREATE_REQUEST', { group_name: '', member_sids: [ann.sid, bob.sid] });
    assert.equal(typeof dm.group_id, 'number');
    for (const app of [ann, bob]) {
      const { payload, id } = await app.delivery('GROUP_DELIVER_REQUEST');
      assert.match(id, /^[A-Za-z0-9]{8}$/);
      assert.equal(payload.group_id, dm.group_id);
      assert.equal(payload.group_type, 1);
      assert.match(payload.date_created, DATE);
      assert.deepEqual([...payload.member_sids].sort(), [ann.sid, bob.sid].sort());
    }
    const same = await bob.ok('GROUP_CREATE_REQUEST', { group_name: '', member_sids: [bob.sid, ann.sid] });
    assert.equal(same.group_id, dm.group_id);
    await bob.delivery('GROUP_DELIVER_REQUEST');

    // A group made by the third user.
    const group = await cat.ok('GROUP_CREATE_REQUEST', { group_name: 'Trio', member_sids: [cat.sid, ann.sid, bob.sid] });
    for (const app of [ann, bob, cat]) {
      const { payload } = await app.delivery('GROUP_DELIVER_REQUEST');
      assert.equal(payload.group_id, group.group_id);
      assert.equal(payload.group_name, 'Trio');
      assert.equal(payload.group_type, 0);
      assert.equal(payload.member_sids.length, 3);
    }

    // Messages reach every member's socket, the sender's too, and each acknowledges.
    const sent = await bob.ok('MESSAGING_SEND_REQUEST', { group_id: group.group_id, content: 'hello trio' });
    assert.equal(typeof sent.message_id, 'number');
    for (const app of [ann, bob, cat]) {
      const { payload } = await app.delivery('MESSAGING_DELIVER_REQUEST');
      assert.equal(payload.message_id, sent.message_id);
      assert.equal(payload.content, 'hello trio');
      assert.equal(payload.group_id, group.group_id);
      assert.equal(payload.sender_sid, bob.sid);
      assert.match(payload.date_created, DATE);
      app.ack(payload.message_id);
    }
    const direct = await ann.ok('MESSAGING_SEND_REQUEST', { group_id: dm.group_id, content: 'just us' });
    for (const app of [ann, bob]) {
      const { payload } = await app.delivery('MESSAGING_DELIVER_REQUEST');
      assert.deepEqual([payload.message_id, payload.sender_sid], [direct.message_id, ann.sid]);
      app.ack(payload.message_id);
    }
    assert.deepEqual(await cat.fails('MESSAGING_SEND_REQUEST', { group_id: dm.group_id, content: 'me too' }), ["sender doesn't belong to message group"]);

    // All of it was echoed back; nothing answered the echoes or the receipts.
    for (const app of [ann, bob, cat]) assert.deepEqual(await app.quiet(600), []);
  });
});

test('a user who was offline gets the groups, then what they missed in order, once across reconnects', async () => {
  const [ann, bob] = await Promise.all([hooligramUser(), hooligramUser()]);
  const dan = await hooligramUser();
  dan.close();
  await withApps([ann, bob], async () => {
    const dm = await ann.ok('GROUP_CREATE_REQUEST', { group_name: '', member_sids: [ann.sid, dan.sid] });
    const group = await bob.ok('GROUP_CREATE_REQUEST', { group_name: 'Later', member_sids: [bob.sid, ann.sid, dan.sid] });
    const sent = [];
    for (const [from, to, content] of [[ann, dm, 'one'], [bob, group, 'two'], [ann, group, 'three'], [ann, dm, 'four']]) {
      sent.push({ ...(await from.ok('MESSAGING_SEND_REQUEST', { group_id: to.group_id, content })), content });
    }

    // First sign-in: the success, both groups, then all four oldest first. Two are acked.
    let app = await dan.again();
    try {
      const frames = await app.quiet(1500);
      const types = frames.map((f) => f.type);
      assert.deepEqual(types, ['GROUP_DELIVER_REQUEST', 'GROUP_DELIVER_REQUEST', ...sent.map(() => 'MESSAGING_DELIVER_REQUEST')]);
      assert.deepEqual(frames.slice(0, 2).map((f) => f.payload.group_id).sort(), [dm.group_id, group.group_id].sort());
      const messages = frames.slice(2).map((f) => f.payload);
      assert.deepEqual(messages.map((m) => m.message_id), sent.map((s) => s.message_id));
      assert.deepEqual(messages.map((m) => m.content), ['one', 'two', 'three', 'four']);
      app.ack(messages[0].message_id);
      app.ack(messages[2].message_id);
      await sleep(300);
    } finally {
      app.close();
    }

    // Second: the groups again, and only the two not acknowledged, in order. Both acked.
    app = await dan.again();
    try {
      const frames = await app.quiet(1500);
      assert.deepEqual(frames.map((f) => f.type), ['GROUP_DELIVER_REQUEST', 'GROUP_DELIVER_REQUEST', 'MESSAGING_DELIVER_REQUEST', 'MESSAGING_DELIVER_REQUEST']);
      const messages = frames.slice(2).map((f) => f.payload);
      assert.deepEqual(messages.map((m) => m.content), ['two', 'four']);
      for (const m of messages) app.ack(m.message_id);
      await sleep(300);
    } finally {
      app.close();
    }

    // Third: the groups, and nothing else.
    app = await dan.again();
    try {
      const frames = await app.quiet(1200);
      assert.deepEqual(frames.map((f) => f.type), ['GROUP_DELIVER_REQUEST', 'GROUP_DELIVER_REQUEST']);
    } finally {
      app.close();
    }
  });
});

test('members leave until the group is gone', async () => {
  const apps = await Promise.all([hooligramUser(), hooligramUser(), hooligramUser()]);
  await withApps(apps, async (ann, bob, cat) => {
    const { group_id } = await ann.ok('GROUP_CREATE_REQUEST', { group_name: 'Brief', member_sids: [ann.sid, bob.sid, cat.sid] });
    for (const app of apps) await app.delivery('GROUP_DELIVER_REQUEST');

    assert.deepEqual(await cat.ok('GROUP_LEAVE_REQUEST', { group_id }), {});
    for (const app of [ann, bob]) {
      const { payload } = await app.delivery('GROUP_DELIVER_REQUEST');
      assert.deepEqual([...payload.member_sids].sort(), [ann.sid, bob.sid].sort());
    }
    assert.deepEqual(await cat.fails('MESSAGING_SEND_REQUEST', { group_id, content: 'still here?' }), ["sender doesn't belong to message group"]);

    // One member left: Ann is told the group as it now stands, then it is deleted, so even
    // she can no longer use it.
    assert.deepEqual(await bob.ok('GROUP_LEAVE_REQUEST', { group_id }), {});
    const { payload } = await ann.delivery('GROUP_DELIVER_REQUEST');
    assert.deepEqual(payload.member_sids, [ann.sid]);
    assert.equal(payload.group_id, group_id);
    assert.deepEqual(await ann.fails('MESSAGING_SEND_REQUEST', { group_id, content: 'alone' }), ["sender doesn't belong to message group"]);
    assert.deepEqual(await ann.fails('GROUP_LEAVE_REQUEST', { group_id }), ['not in group']);
    for (const app of apps) assert.deepEqual(await app.quiet(400), []);
  });
});

test('a chat shared with a channels user carries messages both ways', async () => {
  const ada = await signup('Ada on channels');
  const app = await hooligramUser();
  const adaEarly = await connect('v4', 'websocket', { token: ada.token });
  let adaSocket;
  try {
    // The hooligram user opens a direct message with a user who has no phone: sid "0.<id>".
    const created = nextEvent(adaEarly, 'channelCreate');
    const { group_id } = await app.ok('GROUP_CREATE_REQUEST', { group_name: '', member_sids: [app.sid, `0.${ada.id}`] });
    assert.deepEqual(await created, { channel_id: String(group_id) });
    const { payload } = await app.delivery('GROUP_DELIVER_REQUEST');
    assert.ok(payload.member_sids.includes(`0.${ada.id}`));

    adaSocket = await connect('v4', 'websocket', { token: ada.token, channels: [String(group_id)] });
    await sleep(200);
    const stored = await emitAck(adaSocket, 'message', { content: 'from socket.io', channel: String(group_id) });
    const heard = (await app.delivery('MESSAGING_DELIVER_REQUEST')).payload;
    assert.deepEqual(heard, {
      content: 'from socket.io', date_created: heard.date_created, group_id, message_id: Number(stored.id), sender_sid: `0.${ada.id}`,
    });
    app.ack(heard.message_id);

    const atAda = nextEvent(adaSocket, 'message');
    const sent = await app.ok('MESSAGING_SEND_REQUEST', { group_id, content: 'from hooligram' });
    const message = await atAda;
    assert.equal(message.content, 'from hooligram');
    assert.equal(message.id, String(sent.message_id));
    assert.equal(message.channel_id, String(group_id));
    await app.delivery('MESSAGING_DELIVER_REQUEST');
  } finally {
    app.close();
    adaEarly.close();
    adaSocket?.close();
  }
});

// The chats dialect end to end, with real socket.io-client 4 and 2, the FCM stand-in and S3:
// a group is created, participants are added and removed, admin access is granted and
// removed, a photo is uploaded and the chat deleted. Every response, every socket event each
// user receives (and does not receive), and every push are checked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { BASE, signup, connect, nextEvent, collect } from './helpers.mjs';

const FCM = process.env.FAKE_FCM_URL;
if (!FCM) throw new Error('FAKE_FCM_URL is not set: run the tests with tests/run.sh');
const PNG = readFileSync(new URL('../../fixtures/images/gradient.png', import.meta.url));

// A chats-dialect user: the JWT's subject is their 24-hex id.
async function member(username) {
  const account = await signup(`${username}-${Date.now() % 100000}`);
  const id = JSON.parse(Buffer.from(account.token.split('.')[1], 'base64url')).sub;
  return { id, token: account.token, username: account.username };
}

async function api(method, path, who, body) {
  const headers = { authorization: `Bearer ${who.token}` };
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) { headers['content-type'] = 'application/json'; payload = JSON.stringify(body); }
  const res = await fetch(BASE + path, { method, headers, body: payload });
  return { status: res.status, body: await res.json() };
}

const chatsSocket = (version, transport, who) =>
  connect(version, transport, { token: who.token, how: version === 'v4' ? 'auth' : 'headers' });

// Pushes the stand-in received for these device tokens, once they stop arriving.
async function pushes(devices) {
  let previous = -1;
  let sent = [];
  for (let i = 0; i < 40; i++) {
    sent = await (await fetch(`${FCM}/sent`)).json();
    if (sent.length === previous) break;
    previous = sent.length;
    await new Promise((r) => setTimeout(r, 150));
  }
  return sent.filter((s) => devices.includes(s.body.message.token));
}

test('a group from creation to deletion: responses, socket events and pushes', async () => {
  const max = await member('max');
  const neha = await member('neha');
  const amy = await member('amy');
  const bob = await member('bob');
  const carl = await member('carl');
  for (const [who, device] of [[neha, 'neha-phone'], [amy, 'amy-phone'], [bob, 'bob-phone'], [carl, 'carl-phone']]) {
    const { status } = await api('POST', '/devices', who, { token: device, platform: 'android' });
    assert.equal(status, 201);
  }
  for (const who of [neha, amy, bob, carl]) {
    assert.equal((await api('POST', `/users/${who.id}/follow`, max)).status, 201);
  }

  // Max on two devices; Neha and Amy online (Amy on the 2.x client); Bob and Carl offline.
  const maxHere = await chatsSocket('v4', 'websocket', max);
  const maxPhone = await chatsSocket('v4', 'polling', max);
  const nehaSocket = await chatsSocket('v4', 'websocket', neha);
  const amySocket = await chatsSocket('v2', 'polling', amy);
  const sockets = [maxHere, maxPhone, nehaSocket, amySocket];
  try {
    // Created: everyone in it hears, Max's other device too, but not the socket that asked.
    const created = [nextEvent(maxPhone, 'chat-created'), nextEvent(nehaSocket, 'chat-created')];
    const notHere = collect(maxHere, 'chat-created', 600);
    let res = await api('POST', '/chats', max, {
      isGroup: true, name: 'Future Scientists', category: 'Event',
      participants: [neha.id, bob.id], restricted: true, socket: maxHere.id,
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const chat = res.body.chat;
    assert.equal(chat.creator, max.id);
    assert.equal(chat.isGroup, true);
    assert.equal(chat.restricted, true);
    assert.deepEqual(chat.participants.map((p) => [p.user, !!p.isAdmin]), [[neha.id, false], [bob.id, false], [max.id, true]]);
    for (const event of await Promise.all(created)) assert.deepEqual(event, { chat });
    assert.deepEqual(await notHere, []);
    assert.deepEqual(await collect(amySocket, 'chat-created', 100), [], 'Amy is not in this chat');
    const path = `/chats/${chat._id}`;

    // Added: Amy (online) hears chat-joined; Carl (offline) gets a push instead.
    const amyJoined = nextEvent(amySocket, 'chat-joined');
    res = await api('POST', `${path}/participants/multiple`, max, { participants: [amy.id, carl.id, neha.id] });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.deepEqual(res.body.participants.map((p) => p.user), [amy.id, carl.id]);
    const joined = await amyJoined;
    assert.equal(joined.chat._id, chat._id);
    assert.equal(joined.participant.user, amy.id);
    assert.equal(joined.chat.participants.length, 5);

    // Removed by an admin: the others hear chat-participant-removed; Bob, offline, is pushed.
    const removedEvents = [maxPhone, nehaSocket, amySocket].map((s) => nextEvent(s, 'chat-participant-removed'));
    res = await api('DELETE', `${path}/participants/${bob.id}`, max, { socket: maxHere.id });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    for (const event of await Promise.all(removedEvents)) {
      assert.equal(event.chat, chat._id);
      assert.equal(event.participant.user, bob.id);
    }

    // Admin access: only the participant concerned hears of it.
    const granted = nextEvent(nehaSocket, 'chat-admin-access-granted');
    const amyQuiet = collect(amySocket, 'chat-admin-access-granted', 600);
    res = await api('POST', `${path}/participants/${neha.id}/admin`, max);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.participant.isAdmin, true);
    assert.deepEqual(await granted, { chat: chat._id, participant: res.body.participant });
    assert.deepEqual(await amyQuiet, []);
    const revoked = nextEvent(nehaSocket, 'chat-admin-access-removed');
    res = await api('DELETE', `${path}/participants/${neha.id}/admin`, max);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal((await revoked).participant.user, neha.id);

    // A photo, as form data: stored in S3 and served from its public URL.
    const updated = nextEvent(nehaSocket, 'chat-updated');
    const form = new FormData();
    form.append('name', 'Future Scientists 2');
    form.append('socket', maxHere.id);
    form.append('photo', new Blob([PNG], { type: 'image/png' }), 'tree.png');
    res = await api('PUT', path, max, form);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.chat.name, 'Future Scientists 2');
    const photo = res.body.chat.photo;
    assert.match(photo, new RegExp(`/chats/${chat._id}/[0-9a-f]{24}\\.png$`));
    assert.equal((await updated).chat.photo, photo);
    const stored = await fetch(photo);
    assert.equal(stored.status, 200);
    assert.deepEqual(Buffer.from(await stored.arrayBuffer()), PNG);

    // Deleted: everyone still in it hears chat-deleted except the asking socket; the photo goes.
    const deleted = [maxPhone, nehaSocket, amySocket].map((s) => nextEvent(s, 'chat-deleted'));
    const notHereEither = collect(maxHere, 'chat-deleted', 600);
    res = await api('DELETE', path, max, { socket: maxHere.id });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    for (const event of await Promise.all(deleted)) assert.deepEqual(event, { chat: chat._id });
    assert.deepEqual(await notHereEither, []);
    assert.equal((await api('GET', path, max)).status, 404);
    let photoGone = false;
    for (let i = 0; i < 30 && !photoGone; i++) {
      photoGone = (await fetch(photo)).status === 404;
      if (!photoGone) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(photoGone, 'the photo outlived its chat');

    // Pushes: exactly one per push-worthy event for offline participants, none for online ones.
    const sent = await pushes(['neha-phone', 'amy-phone', 'bob-phone', 'carl-phone']);
    // Pushes to different users go out independently, so their order is not a promise.
    const byDevice = ([a, x], [b, y]) => `${a} ${x}`.localeCompare(`${b} ${y}`);
    const summary = sent.map((s) => [s.body.message.token, s.body.message.data.event]).sort(byDevice);
    assert.deepEqual(summary, [
      // Max followed them all while they were offline: a notification each.
      ['neha-phone', 'notification'],
      ['amy-phone', 'notification'],
      ['bob-phone', 'notification'],
      ['carl-phone', 'notification'],
      ['bob-phone', 'chat-created'],
      ['carl-phone', 'chat-joined'],
      ['bob-phone', 'chat-access-removed'],
    ].sort(byDevice));
    const followed = sent.find((s) => s.body.message.data.event === 'notification');
    assert.equal(followed.body.message.notification.body, `${max.username} just followed you.`);
    assert.deepEqual(sent.find((s) => s.body.message.data.event === 'chat-created').body, {
      message: {
        token: 'bob-phone',
        notification: { title: 'Future Scientists', body: `${max.username} added you to Future Scientists` },
        data: { chat_id: chat._id, event: 'chat-created' },
        android: { priority: 'high' },
        apns: { headers: { 'apns-priority': '10' } },
      },
    });
    assert.equal(sent[0].path, '/v1/projects/palaver-test/messages:send');
    assert.equal(sent[0].authorization, 'Bearer fake-access-token');
  } finally {
    for (const s of sockets) s.close();
  }
});

test('joining by oneself: chat-joined and score-updated on the other devices only', async () => {
  const owner = await member('owner');
  const dan = await member('dan');
  const open = await api('POST', '/chats', owner, { isGroup: true, name: 'Open Lab', category: 'Courses', participants: [] });
  assert.equal(open.status, 201, JSON.stringify(open.body));
  assert.equal(open.body.chat.restricted, false);
  const here = await chatsSocket('v4', 'websocket', dan);
  const phone = await chatsSocket('v4', 'websocket', dan);
  try {
    const joined = nextEvent(phone, 'chat-joined');
    const score = nextEvent(phone, 'score-updated');
    const quiet = collect(here, 'chat-joined', 600);
    const res = await api('POST', `/chats/${open.body.chat._id}/participants`, dan, { socket: here.id });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.participant.user, dan.id);
    assert.equal((await joined).participant._id, res.body.participant._id);
    assert.deepEqual(await score, { score: 10, action: 'join-group-chat', points: 10, actions: { 'join-group-chat': 10 } });
    assert.deepEqual(await quiet, []);
    const again = await api('POST', `/chats/${open.body.chat._id}/participants`, dan, {});
    assert.equal(again.status, 409);
    assert.match(again.body.message, /already a participant/);
  } finally {
    here.close();
    phone.close();
  }
});

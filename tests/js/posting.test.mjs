// The rules of posting over the channels dialect's Socket.IO `message` event, with
// socket.io-client 4: a member only; no post between users who blocked each other; in a group
// that allows no public posts, admins only; content present and bounded. Each refusal comes
// back in the ack with the status HTTP would use, and nothing is delivered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { signup, createChannel, connect, collect, emitAck, bearer, chatNum } from './helpers.mjs';

const subject = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).sub;
const socketOf = (who, channels) => connect('v4', 'websocket', { token: who.token, channels, how: 'auth' });

test('channels Socket.IO messages follow the posting rules', async () => {
  const ada = await signup('ada');
  const bob = await signup('bob');
  const eve = await signup('eve');
  const channel = await createChannel(ada, bob);
  const adaSocket = await socketOf(ada, [channel]);
  const bobSocket = await socketOf(bob, [channel]);
  const eveSocket = await socketOf(eve, [channel]);
  try {
    const heard = collect(bobSocket, 'message', 600);
    // Content: present, not only control characters, at most 4000 characters.
    for (const content of ['   ', '\u0000\u0001', 'x'.repeat(4001)]) {
      const refused = await emitAck(adaSocket, 'message', { content, channel });
      assert.equal(refused.status, 400, JSON.stringify(refused));
    }
    // Not a member: the channel is not found for her.
    assert.equal((await emitAck(eveSocket, 'message', { content: 'hi', channel })).status, 404);
    assert.deepEqual(await heard, [], 'nothing refused is delivered');

    // A block (through the chats dialect's REST): neither side posts in their DM.
    const blocked = await bearer('POST', `/users/${subject(bob.token)}/block`, { token: ada.token });
    assert.equal(blocked.status, 201);
    assert.equal((await emitAck(bobSocket, 'message', { content: 'hi?', channel })).status, 403);
    assert.equal((await emitAck(adaSocket, 'message', { content: 'bye', channel })).status, 403);

    // A group that allows no public posts: admins only.
    const follow = await bearer('POST', `/users/${subject(eve.token)}/follow`, { token: ada.token });
    assert.equal(follow.status, 201);
    const group = await bearer('POST', '/chats', {
      token: ada.token,
      body: { isGroup: true, name: 'Announcements', category: 'News', participants: [subject(eve.token)] },
    });
    assert.equal(group.status, 201);
    const closed = await bearer('PUT', `/chats/${group.body.chat._id}`, { token: ada.token, body: { allowPublicPost: false } });
    assert.equal(closed.status, 200);
    const num = await chatNum(group.body.chat._id);
    const adaInGroup = await socketOf(ada, [num]);
    const eveInGroup = await socketOf(eve, [num]);
    try {
      assert.equal((await emitAck(eveInGroup, 'message', { content: 'may I?', channel: num })).status, 403);
      const posted = await emitAck(adaInGroup, 'message', { content: 'admins only', channel: num });
      assert.equal(posted.content, 'admins only');
    } finally {
      adaInGroup.close();
      eveInGroup.close();
    }
  } finally {
    adaSocket.close();
    bobSocket.close();
    eveSocket.close();
  }
});

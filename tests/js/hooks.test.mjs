// The hooks dialect's chat socket end to end: a message sent on a plain `ws/chat/` WebSocket
// reaches socket.io-client 4 and 2 in the same chat (the channels dialect's `message` event),
// and a message sent over Socket.IO reaches the WebSocket as a `{"message": …}` frame. Each
// is stored once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, nextEvent, emitAck, bearer as hooks, hooksAccount as account, openSocket } from './helpers.mjs';

test('a message crosses from ws/chat/ to socket.io-client 4 and 2 and back', async () => {
  const saliu = await account('saliu');
  const rebecca = await account('rebecca');
  const like = await hooks('POST', '/follow/like/', { token: rebecca.token, body: { like: saliu.id } });
  assert.equal(like.status, 200);
  const answer = await hooks('POST', '/follow/like/respond/', { token: saliu.token, body: { like_instance: like.body.id, action: 'accept' } });
  assert.equal(answer.status, 200);
  const session = await hooks('POST', '/communication/chat/session/initiate/', { token: saliu.token, body: { user: rebecca.id } });
  assert.equal(session.status, 200);
  const chat = String(session.body.id);

  const ws = await openSocket(`/ws/chat/${rebecca.id}/`, saliu.token);
  const v4 = await connect('v4', 'websocket', { token: rebecca.token, channels: [chat], how: 'auth' });
  const v2 = await connect('v2', 'polling', { token: rebecca.token, channels: [chat] });
  try {
    // WebSocket → Socket.IO.
    const heardV4 = nextEvent(v4, 'message');
    const heardV2 = nextEvent(v2, 'message');
    ws.send(JSON.stringify({ message: 'hello from a plain WebSocket' }));
    const echoed = await ws.nextFrame();
    assert.equal(echoed.message, 'hello from a plain WebSocket');
    assert.equal(echoed.actor.id, saliu.id);
    for (const heard of await Promise.all([heardV4, heardV2])) {
      assert.equal(heard.content, 'hello from a plain WebSocket');
      assert.equal(heard.channel_id, chat);
      assert.equal(heard.id, String(echoed.id));
    }

    // Socket.IO → WebSocket.
    const reply = await emitAck(v4, 'message', { content: 'hello from socket.io', channel: chat });
    assert.equal(reply.content, 'hello from socket.io');
    const frame = await ws.nextFrame();
    assert.equal(frame.message, 'hello from socket.io');
    assert.equal(frame.actor.id, rebecca.id);
    assert.equal(frame.session_id, session.body.id);
    assert.equal(String(frame.id), reply.id);

    // Each stored once, in order.
    const stored = await hooks('GET', `/communication/chats/?session_id=${chat}`, { token: rebecca.token });
    assert.deepEqual(stored.body.map((m) => m.message), ['hello from a plain WebSocket', 'hello from socket.io']);
  } finally {
    ws.close();
    v4.close();
    v2.close();
  }
});

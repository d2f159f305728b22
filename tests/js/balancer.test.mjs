// Behind a real load balancer: Debian's HAProxy in front of two nodes, with the configuration
// operators are given (docker/haproxy.cfg). Clients connect through it from several loopback
// addresses, as many clients behind one proxy; the nodes learn each client's address from
// the PROXY protocol, so every per-address rule counts clients, not the proxy.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { clients, emitAck, nextEvent } from './helpers.mjs';
import { connections, sleep } from './nodes.mjs';
import { agentFrom, balancedNodes, request } from './balancer.mjs';

const DATABASE = `balancer_${process.pid}`;
const { track, closeAll } = connections();
let cluster;

before(async () => {
  // A stopping node serves on for a second while HAProxy's checks (every 500 ms) take it out.
  cluster = await balancedNodes('balancer', { MONGODB_DATABASE: DATABASE, SIGN_UPS_PER_MINUTE: '20', DRAIN_TIME: '1' });
});

after(async () => {
  closeAll();
  await cluster?.stop();
});

// Sign-ups come from addresses of their own, a few each, to stay within the per-address
// allowance the throttle test spends.
let signUpAddress = 200;
let signUpsFrom = 0;
async function signup(username) {
  if (++signUpsFrom > 10) [signUpAddress, signUpsFrom] = [signUpAddress + 1, 1];
  const from = `127.0.0.${signUpAddress}`;
  const { status, body } = await request(cluster.base, 'POST', '/new', { from, body: { username } });
  assert.equal(status, 201, JSON.stringify(body));
  return { id: body.id, token: body.token };
}

async function channelBetween(ada, bob) {
  const { status, body } = await request(cluster.base, 'POST', '/create-channel', {
    headers: { Authorisation: ada.token }, body: { to: bob.id, type: 1 },
  });
  assert.equal(status, 201);
  return body.channel_id;
}

// A Socket.IO client of `version` through the balancer from `address`, on `transports`.
function client(version, transports, address, { token, channels, auth, reconnection = false } = {}) {
  const agent = agentFrom(address);
  const opts = { transports, forceNew: true, reconnection, agent, localAddress: address, withCredentials: true };
  if (version === 'v2') opts.query = { token, channels: channels.join(',') };
  else opts.auth = auth ?? { token, channels: channels.join(',') };
  return track(clients[version](cluster.base, opts));
}

const connected = (socket, ms = 10000) => new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('no connect')), ms);
  socket.once('connect', () => { clearTimeout(timer); resolve(socket); });
  socket.once('connect_error', (e) => { clearTimeout(timer); reject(e); });
});

const TRANSPORTS = [['polling'], ['polling', 'websocket'], ['websocket']];

for (const version of ['v4', 'v2']) {
  for (const transports of TRANSPORTS) {
    test(`socket.io-client ${version} over ${transports.join(' then ')} talks across both nodes through the balancer`, async () => {
      const [onOne] = await cluster.addressesOn(0, 1);
      const [onTwo] = await cluster.addressesOn(1, 1);
      const ada = await signup('ada');
      const bob = await signup('bob');
      const channel = await channelBetween(ada, bob);
      const adaSocket = await connected(client(version, transports, onOne, { token: ada.token, channels: [channel] }));
      const bobSocket = await connected(client(version, transports, onTwo, { token: bob.token, channels: [channel] }));
      if (transports.length === 2) {
        // Both upgrade, each on the node that holds its polling session.
        for (const socket of [adaSocket, bobSocket]) {
          const engine = socket.io.engine;
          if (engine.transport.name !== 'websocket') await new Promise((resolve) => engine.once('upgrade', resolve));
        }
      }
      for (let i = 0; i < 3; i++) {
        const heard = nextEvent(bobSocket, 'message', 5000);
        const ack = await emitAck(adaSocket, 'message', { content: `hello ${i}`, channel }, 5000);
        assert.match(ack.id, /^\d+$/, JSON.stringify(ack));
        assert.equal((await heard).content, `hello ${i}`);
        const back = nextEvent(adaSocket, 'message', 5000);
        await emitAck(bobSocket, 'message', { content: `back ${i}`, channel }, 5000);
        assert.equal((await back).content, `back ${i}`);
      }
      adaSocket.close();
      bobSocket.close();
    });
  }
}

test('2,000 Socket.IO connections through the balancer are held, and one client still gets at most 1,000 per node', async () => {
  const user = await signup('many');
  const [crowded] = await cluster.addressesOn(0, 1, 60);
  const others = [...await cluster.addressesOn(0, 2, 80), ...await cluster.addressesOn(1, 2, 80)];
  const open = async (address, count) => {
    const sockets = [];
    for (let start = 0; start < count; start += 100) {
      const batch = Array.from({ length: Math.min(100, count - start) }, () => connected(client('v4', ['websocket'], address, { token: user.token, channels: [] }), 30000));
      sockets.push(...await Promise.all(batch));
    }
    return sockets;
  };
  // 1,000 from one client (all on node one), and 1,000 from four others on both nodes: 2,000
  // through one proxy, 1,000 or more of them on node one.
  const held = await open(crowded, 1000);
  for (const address of others) held.push(...await open(address, 250));
  assert.equal(held.length, 2000);
  assert.ok(held.every((socket) => socket.connected));

  // The crowded client's 1,001st is refused; another client is still served.
  const refused = await connected(client('v4', ['websocket'], crowded, { token: user.token, channels: [] }), 10000).then(() => false, () => true);
  assert.ok(refused, 'the 1,001st connection from one client is refused');
  const [fresh] = await cluster.addressesOn(0, 1, 120);
  const served = await connected(client('v4', ['websocket'], fresh, { token: user.token, channels: [] }));
  assert.ok(served.connected);
  for (const socket of [...held, served]) socket.close();
});

test('sign-ups and sign-ins are throttled per client address behind the balancer; a forged X-Forwarded-For is ignored', async () => {
  const [first, second] = await cluster.addressesOn(0, 2, 140);
  const signUps = async (from, count, headers = {}) => {
    const statuses = [];
    for (let i = 0; i < count; i++) {
      const username = `t${from.split(".")[3]}n${i}`;
      statuses.push((await request(cluster.base, 'POST', '/new', { from, body: { username }, headers })).status);
    }
    return statuses;
  };
  // 20 at once from one client, then 429; a forged header does not make it someone else.
  const firstStatuses = await signUps(first, 21);
  assert.deepEqual(firstStatuses.slice(0, 20), Array(20).fill(201));
  assert.equal(firstStatuses[20], 429);
  assert.deepEqual(await signUps(first, 1, { 'x-forwarded-for': '203.0.113.50' }), [429]);
  // Another client behind the same proxy, on the same node, is not held back by it.
  assert.deepEqual(await signUps(second, 3), [201, 201, 201]);

  // Sign-ins: 30 attempts per client address at once, then one every 2 s (each attempt for
  // a different account, so that only the address's allowance runs out).
  const signIn = (from, i) => request(cluster.base, 'POST', '/user/signin/', {
    from, body: { email: `nobody-${i}-${Date.now()}@example.org`, password: 'not it' },
  }).then((r) => r.status);
  const began = Date.now();
  const attempts = [];
  while (attempts.length < 60 && !attempts.includes(429)) attempts.push(await signIn(first, attempts.length));
  const refilled = Math.ceil((Date.now() - began) / 2000);
  assert.equal(attempts.at(-1), 429, `refused within 60 attempts: ${attempts}`);
  assert.ok(attempts.length > 30 && attempts.length <= 31 + refilled, `${attempts.length} attempts, ${refilled} refilled`);
  assert.equal(await signIn(second, 99), 401);
});

// A rolling restart: node one, then node two, gets SIGTERM while clients on both send
// acknowledged messages. The balancer takes the stopping node out of rotation, its clients
// reconnect through the balancer to the other node and catch up with `lastSeen`.
test('a rolling restart through the balancer loses and reorders nothing acknowledged', async (t) => {
  const ada = await signup('ada');
  const bob = await signup('bob');
  const channel = await channelBetween(ada, bob);
  const [onOne] = await cluster.addressesOn(0, 1, 160);
  const [onTwo] = await cluster.addressesOn(1, 1, 160);
  const errors = [];
  const began = Date.now();
  // Receivers: Bob on each node, over WebSocket and over polling then upgrade; each asks on
  // every (re)connection for what came after the last message it saw.
  const receivers = [];
  for (const [address, transports] of [[onOne, ['polling', 'websocket']], [onTwo, ['websocket']], [onOne, ['websocket']], [onTwo, ['polling', 'websocket']]]) {
    const seen = [];
    const auth = (cb) => cb({ token: bob.token, channels: channel, ...(seen.length ? { lastSeen: { [channel]: seen.at(-1).id } } : {}) });
    const socket = client('v4', transports, address, { auth, reconnection: true });
    socket.io.reconnectionDelay(100);
    socket.io.reconnectionDelayMax(500);
    const events = [];
    socket.on('message', (m) => { seen.push({ id: m.id, at: Date.now() }); events.push(m.id); });
    for (const event of ['connect', 'disconnect']) socket.on(event, (why) => events.push(`${event} ${why ?? ''} @${Date.now() - began}`));
    socket.on('connect_error', (e) => errors.push(`receiver ${receivers.length} at ${Date.now() - began} ms: ${e.message}`));
    receivers.push({ socket, seen, events });
    await connected(socket);
  }
  // Senders: Ada on each node.
  const senders = [];
  for (const address of [onOne, onTwo]) {
    const socket = client('v4', ['websocket'], address, { token: ada.token, channels: [channel], reconnection: true });
    socket.io.reconnectionDelay(100);
    socket.io.reconnectionDelayMax(500);
    socket.on('connect_error', (e) => errors.push(`sender ${senders.length} at ${Date.now() - began} ms: ${e.message}`));
    senders.push(socket);
    await connected(socket);
  }

  const acked = [];
  let unacked = 0;
  let sending = true;
  const send = (async () => {
    for (let i = 0; sending; i++) {
      const sender = senders[i % 2];
      try {
        const ack = await emitAck(sender, 'message', { content: `rolling ${i}`, channel }, 3000);
        if (ack.id) acked.push(ack.id);
        else errors.push(`ack ${JSON.stringify(ack)}`);
      } catch {
        unacked += 1;
      }
      await sleep(40); // within the user's event budget
    }
  })();
  await sleep(1500);
  const started = Date.now();
  t.diagnostic(`restarting node one at ${started - began} ms`);
  await cluster.restart(0);
  t.diagnostic(`node one back at ${Date.now() - began} ms`);
  await sleep(1500);
  await cluster.restart(1);
  t.diagnostic(`node two back at ${Date.now() - began} ms`);
  await sleep(1500);
  sending = false;
  await send;
  const restartTook = Date.now() - started;
  await sleep(2000);

  // History, newest page first (each page oldest first).
  const stored = [];
  for (;;) {
    const before = stored.length ? `&before=${stored[0]}` : '';
    const page = await request(cluster.base, 'GET', `/messages?channel_id=${channel}&limit=100${before}`, { headers: { Authorisation: bob.token } });
    assert.equal(page.status, 200);
    stored.unshift(...page.body.messages.map((m) => m.id));
    if (page.body.messages.length < 100) break;
  }
  const figures = { acknowledged: acked.length, unacknowledged: unacked, stored: stored.length, restartMs: restartTook };
  for (const [i, { seen, events }] of receivers.entries()) {
    const ids = seen.map((s) => s.id);
    if (JSON.stringify(ids) !== JSON.stringify(stored)) console.log(`receiver ${i}:`, JSON.stringify(events));
    const unique = new Set(ids);
    const gaps = seen.slice(1).map((s, j) => s.at - seen[j].at);
    figures[`receiver ${i}`] = {
      delivered: unique.size, duplicated: ids.length - unique.size,
      lost: acked.filter((id) => !unique.has(id)).length, longestGapMs: Math.max(...gaps),
    };
  }
  t.diagnostic(JSON.stringify(figures));
  console.log('rolling restart:', JSON.stringify(figures));
  for (const [i, { seen }] of receivers.entries()) {
    // A message stored as a client caught up may come twice, with its id (see the README's
    // channels notes): apps key messages by id. Each must come, and in order.
    const unique = new Set(seen.map((s) => s.id));
    assert.deepEqual([...unique], stored, `receiver ${i} heard every stored message, in order`);
  }
  for (const id of acked) assert.ok(stored.includes(id), `acknowledged ${id} is stored`);
  assert.ok(acked.length > 20, `${acked.length} acknowledged`);
  assert.deepEqual(errors, []);
});

test('a forged X-Forwarded-For from a client connecting to a node directly is ignored', async () => {
  const node = cluster.nodes[0].base;
  // From 127.0.0.250, not the trusted proxy: its own address counts, whatever it says.
  const from = '127.0.0.250';
  const statuses = [];
  for (let i = 0; i < 21; i++) {
    const headers = { 'x-forwarded-for': `203.0.113.${i}` };
    const username = `direct${i}`;
    statuses.push((await request(node, 'POST', '/new', { from, body: { username }, headers })).status);
  }
  assert.deepEqual(statuses.slice(0, 20), Array(20).fill(201));
  assert.equal(statuses[20], 429);
});

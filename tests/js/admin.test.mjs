// The Socket.IO Admin UI for operators, on two nodes sharing a Redis: the `/admin` namespace
// speaks what the official `@socket.io/admin-ui` page expects (its sign-in and sessions, its
// config, every node's sockets with their rooms, each node's stats under its own server id,
// live updates, and its actions on sockets of either node), and the page itself, fetched
// from npm by the node at its first start, is driven in headless Chromium: an operator signs
// in, sees the test's sockets and rooms, and disconnects a client from it. Screenshots of the
// dashboard and the sockets page are kept with the test logs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { clients, signup, createChannel, connect, Hooligram } from './helpers.mjs';
import { launchBrowser, watchPage } from './browser.mjs';
import { LOGS, sleep, twoNodes, connections } from './nodes.mjs';

const OPERATOR = { username: 'operator', password: 'operator-password' };
// bcrypt of the password above, as `@socket.io/admin-ui` takes it.
const PASSWORD_HASH = '$2a$10$KEOwPRPQ6Qx9OEeoX.QzcO.cVcUOHrcJVjsDWlmLJyZOBB1.Xn23y';
const DATABASE = `admin_${process.pid}`;

let cluster;
let one;
let two;
const { track, closeAll } = connections();

before(async () => {
  cluster = await twoNodes('admin', {
    MONGODB_DATABASE: DATABASE, ADMIN_USERNAME: OPERATOR.username, ADMIN_PASSWORD_HASH: PASSWORD_HASH,
  });
  ({ one, two } = cluster);
});

after(async () => {
  closeAll();
  await cluster?.stop();
});

// An operator's page, as the package's own client connects: socket.io-client 4 to the
// `/admin` namespace, every event it hears kept in order.
function operator(base, auth, { path = '/socket.io' } = {}) {
  const socket = clients.v4(`${base}/admin`, { path, auth, forceNew: true, reconnection: false, withCredentials: true });
  socket.heard = [];
  socket.onAny((event, ...args) => socket.heard.push({ event, args }));
  return new Promise((resolve, reject) => {
    socket.on('connect', () => resolve(track(socket)));
    socket.on('connect_error', (e) => { socket.close(); reject(e); });
  });
}

// The first event of this name (and matching `where`) the page heard, waiting for it.
async function heard(page, event, where = () => true, ms = 6000) {
  for (let waited = 0; waited < ms; waited += 50) {
    const found = page.heard.find((h) => h.event === event && where(...h.args));
    if (found) return found.args;
    await sleep(50);
  }
  throw new Error(`no ${event} within ${ms} ms; heard ${page.heard.map((h) => h.event).join(', ')}`);
}

const disconnected = (socket) => new Promise((resolve) => socket.once('disconnect', resolve));

test('the /admin namespace: sign-in, every node\'s sockets and stats, live changes, and actions across nodes', async () => {
  await assert.rejects(operator(one.base, { ...OPERATOR, password: 'wrong' }), { message: 'invalid credentials' });
  await assert.rejects(operator(one.base, { sessionId: 'forged' }), { message: 'invalid credentials' });

  const ada = await signup('ada', one.base);
  const bob = await signup('bob', one.base);
  const adaSocket = track(await connect('v4', 'websocket', { token: ada.token, how: 'auth', base: two.base }));
  const bobSocket = track(await connect('v4', 'polling', { token: bob.token, how: 'auth', base: one.base }));
  const hooligram = await Hooligram.open({ base: two.base });
  track(hooligram);

  const page = await operator(one.base, OPERATOR);
  const [session] = await heard(page, 'session');
  const [config] = await heard(page, 'config');
  assert.deepEqual(config.supportedFeatures.sort(), [
    'AGGREGATED_EVENTS', 'ALL_EVENTS', 'DISCONNECT', 'JOIN', 'LEAVE', 'MDISCONNECT', 'MJOIN', 'MLEAVE',
  ]);

  // Every socket of the path, on both nodes, as the page lists them.
  const [all] = await heard(page, 'all_sockets');
  const listed = (id) => all.find((s) => s.id === id);
  for (const [socket, transport] of [[adaSocket, 'websocket'], [bobSocket, 'polling']]) {
    const shown = listed(socket.id);
    assert.ok(shown, `${socket.id} is listed`);
    assert.equal(shown.nsp, '/');
    assert.equal(shown.transport, transport);
    assert.equal(shown.rooms[0], socket.id, 'a socket is in a room of its own, first');
    assert.equal(shown.handshake.address, '127.0.0.1');
    assert.equal(shown.data.username, socket === adaSocket ? 'ada' : 'bob');
  }
  assert.notEqual(listed(adaSocket.id).data.server, listed(bobSocket.id).data.server, 'each on its own node');
  assert.ok(listed(page.id), 'the operator\'s own socket is listed too');
  assert.ok(!JSON.stringify(all).includes(ada.token), 'no credentials are shown');

  // Each node's stats, under its own server id; the plain WebSocket on node two is counted.
  const servers = new Map();
  for (let waited = 0; servers.size < 2 && waited < 6000; waited += 100) {
    for (const { event, args } of page.heard) if (event === 'server_stats') servers.set(args[0].serverId, args[0]);
    await sleep(100);
  }
  assert.equal(servers.size, 2, 'both nodes report');
  const stats = [...servers.values()];
  assert.ok(stats.every((s) => s.hostname && s.pid > 0 && s.uptime > 0));
  const namespaces = stats.flatMap((s) => s.namespaces);
  assert.ok(namespaces.some((n) => n.name === 'hooligram (plain WebSocket)' && n.socketsCount === 1));
  assert.ok(stats.some((s) => s.pollingClientsCount >= 1), 'Bob polls');

  // Live: a socket connecting on the other node, and both joining their new channel's room.
  const carl = await signup('carl', one.base);
  const carlSocket = track(await connect('v4', 'websocket', { token: carl.token, how: 'auth', base: two.base }));
  await heard(page, 'socket_connected', (socket) => socket.id === carlSocket.id);
  await createChannel(ada, bob, one.base);
  const [, room] = await heard(page, 'room_joined', (nsp, _room, id) => id === adaSocket.id && _room.includes('chat:'));
  await heard(page, 'room_joined', (nsp, joined, id) => id === bobSocket.id && joined === room);

  // Actions on a socket of the other node: join a room, leave it, be disconnected.
  const adaId = adaSocket.id;
  page.emit('join', '/', 'operators-room', adaId);
  await heard(page, 'room_joined', (nsp, joined, id) => joined === 'operators-room' && id === adaId);
  page.emit('leave', '/', 'operators-room', adaId);
  await heard(page, 'room_left', (nsp, left, id) => left === 'operators-room' && id === adaId);
  const gone = disconnected(adaSocket);
  page.emit('_disconnect', '/', false, adaId);
  assert.equal(await gone, 'io server disconnect');
  const [nsp, , reason] = await heard(page, 'socket_disconnected', (_nsp, id) => id === adaId);
  assert.equal(nsp, '/');
  assert.equal(reason, 'server namespace disconnect');
  assert.ok(bobSocket.connected && carlSocket.connected, 'nobody else');

  // The session works on the other node, without the password.
  const again = await operator(two.base, { sessionId: session });
  assert.ok((await heard(again, 'all_sockets'))[0].some((s) => s.id === bobSocket.id));
  assert.equal(again.heard.filter((h) => h.event === 'session').length, 0);

  // The requests feed's path has its own /admin namespace.
  const feed = track(clients.v4(one.base, { path: '/chat/socket', auth: { token: carl.token }, forceNew: true, reconnection: false }));
  await new Promise((resolve) => feed.on('connect', resolve));
  const feedPage = await operator(two.base, OPERATOR, { path: '/chat/socket' });
  const [feedSockets] = await heard(feedPage, 'all_sockets');
  assert.ok(feedSockets.some((s) => s.id === feed.id));
  assert.ok(!feedSockets.some((s) => s.id === bobSocket.id), 'only the path\'s own sockets');
});

// The page loads Roboto and Material Design Icons from CDNs, which this machine cannot
// reach: the browser is given the same files from npm (`@mdi/font`) instead.
const MDI = new URL('./node_modules/@mdi/font/', import.meta.url);
async function offline(tab) {
  await tab.setRequestInterception(true);
  tab.on('request', (request) => {
    const url = new URL(request.url());
    const cors = { 'access-control-allow-origin': '*' };
    if (url.hostname === 'fonts.googleapis.com') {
      return request.respond({ status: 200, contentType: 'text/css', headers: cors, body: '' });
    }
    if (url.hostname === 'cdn.jsdelivr.net') {
      const file = url.pathname.replace(/^\/npm\/@mdi\/font@[^/]+\//, '');
      const type = file.endsWith('.css') ? 'text/css' : `font/${file.split('.').pop()}`;
      return request.respond({ status: 200, contentType: type, headers: cors, body: readFileSync(new URL(file, MDI)) });
    }
    return request.continue();
  });
}

async function pageFetched(base) {
  for (let i = 0; i < 600; i++) {
    const res = await fetch(`${base}/admin/ui/`);
    if (res.status === 200) return res.text();
    await sleep(100);
  }
  throw new Error('the Admin UI page was not fetched within 60 s');
}

test('the official Admin UI page, fetched from npm, in Chromium: sign in, see the sockets and rooms, disconnect one', async () => {
  const html = await pageFetched(one.base);
  assert.match(html, /<title>Socket.IO Admin UI<\/title>/);

  const dan = await signup('dan', one.base);
  const eve = await signup('eve', one.base);
  const channel = await createChannel(dan, eve, one.base);
  const danSocket = track(await connect('v4', 'polling', { token: dan.token, channels: [channel], how: 'auth', base: one.base }));
  const eveSocket = track(await connect('v2', 'websocket', { token: eve.token, channels: [channel], how: 'query', base: two.base }));

  const browser = await launchBrowser();
  try {
    const tab = await browser.newPage();
    await tab.setViewport({ width: 1280, height: 900 });
    await offline(tab);
    const problems = watchPage(tab);
    await tab.goto(`${one.base}/admin/ui/`, { waitUntil: 'networkidle0' });
    const field = (label) => `::-p-xpath(//label[text()="${label}"]/following-sibling::input)`;
    await tab.type(field('Server URL'), one.base);
    await tab.type(field('Username'), OPERATOR.username);
    await tab.type(field('Password'), OPERATOR.password);
    await tab.click('::-p-xpath(//button[.//span[normalize-space()="Connect"]])');
    await tab.waitForSelector('::-p-xpath(//span[contains(@class, "v-chip__content")][normalize-space()="connected"])');

    // The dashboard: both nodes healthy, the namespaces, the clients by transport.
    const main = () => tab.$eval('main', (m) => m.innerText);
    for (let i = 0; i < 60 && !/Healthy\s+2\b/i.test(await main()); i++) await sleep(100);
    assert.match(await main(), /Healthy\s+2\b/i, 'both nodes report, healthy');
    await sleep(1500); // the charts' animations
    await tab.screenshot({ path: join(LOGS, 'admin-ui-dashboard.png') });

    // The sockets of both nodes, and the channel's room with both members' sockets.
    await tab.goto(`${one.base}/admin/ui/#/sockets`);
    await tab.waitForSelector(`::-p-xpath(//td[normalize-space()="${danSocket.id}"])`);
    await tab.waitForSelector(`::-p-xpath(//td[normalize-space()="${eveSocket.id}"])`);
    await sleep(800); // the page's transition
    await tab.screenshot({ path: join(LOGS, 'admin-ui-sockets.png') });
    await tab.goto(`${one.base}/admin/ui/#/rooms`);
    await tab.waitForSelector('::-p-xpath(//td[contains(normalize-space(), "chat:")])');

    // Disconnect Eve (on the other node) from the sockets page.
    await tab.goto(`${one.base}/admin/ui/#/sockets`);
    const eveId = eveSocket.id;
    const gone = disconnected(eveSocket);
    await tab.click(`::-p-xpath(//tr[td[normalize-space()="${eveId}"]]//button[.//i[contains(@class, "mdi-logout")]])`);
    assert.equal(await gone, 'io server disconnect');
    await tab.waitForSelector(`::-p-xpath(//td[normalize-space()="${eveId}"])`, { hidden: true });
    assert.ok(danSocket.connected, 'Dan stays');
    assert.deepEqual(problems, [], 'the page reports nothing wrong');
  } finally {
    await browser.close();
  }
});

// Browser apps, in a real headless Chromium: a page served from another origin than Palaver's
// loads the socket.io-client 4.x or 2.x browser bundle from npm and, for the channels, chats
// and requests dialects, connects, sends, receives and acks over the client's default
// transports (long-polling, then the upgrade), long-polling only and WebSocket only, with and
// without credentials; its REST calls are preflighted. The page must report nothing wrong:
// no console error, no failed request. A second node lets in only a listed origin
// (CORS_ORIGINS): a page from another is refused over polling and WebSocket, and its REST
// answers cannot be read.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, signup } from './helpers.mjs';
import { launchBrowser, servePages, watchPage } from './browser.mjs';
import { startPalaver } from './nodes.mjs';

// The browser bundles each release publishes on npm.
const BUNDLES = {
  v4: new URL('./node_modules/socket.io-client-v4/dist/socket.io.min.js', import.meta.url),
  v2: new URL('./node_modules/socket.io-client-v2/dist/socket.io.js', import.meta.url),
};
const TRANSPORTS = { default: undefined, polling: ['polling'], websocket: ['websocket'] };
// What each transport choice ends on: the default upgrades from polling to WebSocket.
const SETTLED = { default: 'websocket', polling: 'polling', websocket: 'websocket' };

const page = (client) => `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>A ${client} app</title></head>
<body><script src="/${client}/socket.io.js"></script><script>window.CLIENT = '${client}';</script>
<script src="/app.js"></script></body></html>`;

const files = {
  '/app.js': { type: 'text/javascript', path: new URL('./browser/app.js', import.meta.url) },
};
for (const [client, path] of Object.entries(BUNDLES)) {
  files[`/${client}.html`] = { type: 'text/html', body: page(client) };
  files[`/${client}/socket.io.js`] = { type: 'text/javascript', path };
}

let browser;
let app; // where the apps are served from
let foreign; // another origin, not on the strict node's list
let strict; // a node that lets in the apps' origin only

before(async () => {
  browser = await launchBrowser();
  [app, foreign] = await Promise.all([servePages(files), servePages(files)]);
  strict = await startPalaver('browser-strict', { CORS_ORIGINS: app.origin });
});

after(async () => {
  await browser?.close();
  await Promise.all([app?.close(), foreign?.close(), strict?.stop()]);
});

const subject = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).sub;

async function account(name, base = BASE) {
  const made = await signup(name, base);
  return { ...made, hex: subject(made.token) };
}

async function openPage(origin, client) {
  const tab = await browser.newPage();
  const problems = watchPage(tab);
  await tab.goto(`${origin}/${client}.html`);
  await tab.waitForFunction(() => window.scenarios && window.io);
  return { tab, problems };
}

const run = (tab, scenario, args) =>
  tab.evaluate((name, args) => window.scenarios[name](args), scenario, args);

for (const client of ['v4', 'v2']) {
  test(`socket.io-client ${client} in Chromium, from another origin: every Socket.IO dialect over every transport`, async () => {
    const { tab, problems } = await openPage(app.origin, client);
    try {
      for (const [choice, transports] of Object.entries(TRANSPORTS)) {
        for (const withCredentials of [false, true]) {
          const label = `${client}, ${choice}, credentials ${withCredentials}`;
          const args = { base: BASE, transports, withCredentials };

          const channels = await run(tab, 'channels', { ...args, ada: await account('ada'), bob: await account('bob') });
          assert.equal(channels.created, 201, label);
          assert.equal(channels.ack.content, `hello from ${client}`, label);
          assert.match(channels.ack.id, /^\d+$/, label);
          assert.deepEqual(channels.heard, channels.ack, `${label}: the other socket hears what was acked`);
          assert.deepEqual(channels.transports, [SETTLED[choice], SETTLED[choice]], label);

          const bob = await account('bob');
          const chats = await run(tab, 'chats', { ...args, ada: await account('ada'), bob });
          assert.equal(chats.opened, 201, label);
          assert.equal(chats.announced.chat._id, chats.chat, label);
          assert.deepEqual(chats.announced.chat.participants.map((p) => p.user).sort(), [bob.hex, chats.announced.chat.creator].sort(), label);
          assert.deepEqual(chats.transports, [SETTLED[choice]], label);

          // The feed's clients are socket.io-client 3 and 4.
          if (client === 'v4') {
            const requests = await run(tab, 'requests', { ...args, ada: await account('ada'), bob: await account('bob') });
            assert.equal(requests.asked, 201, label);
            assert.equal(requests.totals.totalPendingRequests, 1, label);
            assert.equal(requests.heard.id, requests.sent, label);
            assert.equal(requests.heard.text, `hello from ${client}`, label);
            assert.deepEqual(requests.transports, [SETTLED[choice]], label);
          }
        }
      }
      assert.deepEqual(problems, [], 'the page reports nothing wrong');
    } finally {
      await tab.evaluate(() => window.scenarios.closeAll());
      await tab.close();
    }
  });
}

test('with CORS_ORIGINS listed, a listed origin gets in with credentials and another is refused at every door', async () => {
  const { token } = await account('ada', strict.base);
  const listed = await openPage(app.origin, 'v4');
  const other = await openPage(foreign.origin, 'v4');
  try {
    for (const [choice, transports] of Object.entries(TRANSPORTS)) {
      const args = { base: strict.base, token, transports, withCredentials: true };
      assert.deepEqual(await run(listed.tab, 'knock', args), { socket: SETTLED[choice], rest: 200 }, `listed, ${choice}`);
      const refused = await run(other.tab, 'knock', args);
      assert.match(refused.socket, /^refused: /, `other origin, ${choice}`);
      assert.equal(refused.rest, 'Failed to fetch', `other origin, ${choice}: the answer cannot be read`);
    }
    assert.deepEqual(listed.problems, [], 'the listed origin\'s page reports nothing wrong');
    const said = other.problems.join('\n');
    assert.match(said, /blocked by CORS policy/, 'the other page was told why, over polling and REST');
    assert.match(said, /WebSocket connection to '.*' failed/, 'and its WebSocket upgrades were refused');
  } finally {
    for (const { tab } of [listed, other]) {
      await tab.evaluate(() => window.scenarios.closeAll());
      await tab.close();
    }
  }
});

test('preflights answer every header the clients send, with credentials, and are cached', async () => {
  const asked = ['authorisation', 'authorization', 'channels', 'content-type', 'x-custom'];
  for (const [base, origin] of [[BASE, 'https://any.example'], [strict.base, app.origin]]) {
    const res = await fetch(`${base}/socket.io/?EIO=4&transport=polling`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': asked.join(',') },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), origin);
    assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
    assert.deepEqual(res.headers.get('access-control-allow-headers').split(','), asked);
    assert.match(res.headers.get('access-control-allow-methods'), /POST/);
    assert.equal(res.headers.get('access-control-max-age'), '3600');
    assert.match(res.headers.get('vary'), /origin/i);
  }
  // A page's origin not on the list: no CORS answer, and its requests are refused outright.
  const polled = await fetch(`${strict.base}/socket.io/?EIO=4&transport=polling`, { headers: { origin: foreign.origin } });
  assert.equal(polled.status, 403);
  assert.equal(polled.headers.get('access-control-allow-origin'), null);
  // No Origin at all (a native app, a server): not a page, let in.
  const native = await fetch(`${strict.base}/socket.io/?EIO=4&transport=polling`);
  assert.equal(native.status, 200);
});

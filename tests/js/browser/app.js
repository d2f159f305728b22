// What a browser app of each Socket.IO dialect does, run in a page served from another
// origin than Palaver's, with the socket.io-client browser bundle the page loaded (`io`,
// 4.x or 2.x: `window.CLIENT`). Each step resolves with what the app saw, for the test to
// check; nothing here asserts.
/* global io */

// Connect as the app does: socket.io-client 3+ puts the token in `auth` (a browser cannot
// set headers on a WebSocket), 2.x in the query. `transports` undefined is the client's own
// default (long-polling first, then the upgrade).
function open(base, { path, token, channels, transports, withCredentials }) {
  const options = { path, transports, withCredentials, forceNew: true, reconnection: false };
  const fields = { token, channels };
  if (window.CLIENT === 'v4') options.auth = fields;
  else options.query = fields;
  const socket = io(base, options);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no connect within 5 s')), 5000);
    const refused = (error) => {
      clearTimeout(timer);
      socket.close();
      reject(new Error(`refused: ${error && error.message ? error.message : error}`));
    };
    socket.on('connect', () => { clearTimeout(timer); resolve(socket); });
    socket.on('connect_error', refused);
    socket.on('error', refused);
  });
}

function next(socket, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    socket.once(event, (data) => { clearTimeout(timer); resolve(data); });
  });
}

function acked(socket, event, data, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for ${event} within ${ms} ms`)), ms);
    socket.emit(event, data, (reply) => { clearTimeout(timer); resolve(reply); });
  });
}

// A REST call from the page: a custom header makes it a preflighted cross-origin request.
async function rest(base, method, path, { headers = {}, body, withCredentials } = {}) {
  const init = { method, headers: { ...headers }, credentials: withCredentials ? 'include' : 'same-origin' };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(base + path, init);
  return { status: res.status, body: await res.json(), error: res.headers.get('x-palaver-error') };
}

// The transport a socket ended up on, once an upgrade the client tries has had its chance.
async function settledTransport(socket, transports) {
  const engine = socket.io.engine;
  const upgrades = !transports || transports.length > 1;
  if (upgrades && engine.transport.name !== 'websocket') {
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 3000);
      engine.once('upgrade', () => { clearTimeout(timer); resolve(); });
    });
  }
  return engine.transport.name;
}

const sockets = [];
const keep = (socket) => { sockets.push(socket); return socket; };

window.scenarios = {
  // Channels: a DM channel made over REST, then a message sent with an ack by one socket and
  // heard by the other's.
  async channels({ base, ada, bob, transports, withCredentials }) {
    const made = await rest(base, 'POST', '/create-channel', {
      headers: { Authorisation: ada.token }, body: { to: bob.id, type: 1 }, withCredentials,
    });
    const channel = made.body.channel_id;
    const common = { path: '/socket.io', channels: channel, transports, withCredentials };
    const bobSocket = keep(await open(base, { ...common, token: bob.token }));
    const adaSocket = keep(await open(base, { ...common, token: ada.token }));
    const heard = next(bobSocket, 'message');
    const ack = await acked(adaSocket, 'message', { content: `hello from ${window.CLIENT}`, channel });
    return {
      created: made.status,
      ack,
      heard: await heard,
      transports: [await settledTransport(adaSocket, transports), await settledTransport(bobSocket, transports)],
    };
  },

  // Chats: a one-to-one chat opened over REST (Bearer) is announced on the other's socket.
  async chats({ base, ada, bob, transports, withCredentials }) {
    const bobSocket = keep(await open(base, { path: '/socket.io', token: bob.token, transports, withCredentials }));
    const announced = next(bobSocket, 'chat-created');
    const opened = await rest(base, 'POST', '/chats', {
      headers: { Authorization: `Bearer ${ada.token}` }, body: { user: bob.hex }, withCredentials,
    });
    return {
      opened: opened.status,
      chat: opened.body.chat && opened.body.chat._id,
      announced: await announced,
      transports: [await settledTransport(bobSocket, transports)],
    };
  },

  // The requests feed: a request and its first message, sent over REST with the raw token,
  // heard on the asked user's feed at /chat/socket.
  async requests({ base, ada, bob, transports, withCredentials }) {
    const feed = keep(await open(base, { path: '/chat/socket', token: bob.token, transports, withCredentials }));
    const totals = next(feed, 'totals');
    const asked = await rest(base, 'POST', '/chat', {
      headers: { Authorization: ada.token }, body: { userId: Number(bob.id) }, withCredentials,
    });
    const heard = next(feed, 'message');
    const sent = await rest(base, 'POST', `/chat/${asked.body.id}`, {
      headers: { Authorization: ada.token }, body: { text: `hello from ${window.CLIENT}` }, withCredentials,
    });
    return {
      asked: asked.status,
      sent: sent.body.id,
      totals: await totals,
      heard: await heard,
      transports: [await settledTransport(feed, transports)],
    };
  },

  // Whether a socket of this page can connect at all, and a REST call be read.
  async knock({ base, token, transports, withCredentials }) {
    const outcome = {};
    try {
      const socket = keep(await open(base, { path: '/socket.io', token, transports, withCredentials }));
      outcome.socket = await settledTransport(socket, transports);
    } catch (error) {
      outcome.socket = error.message;
    }
    try {
      outcome.rest = (await rest(base, 'GET', '/healthz', { withCredentials })).status;
    } catch (error) {
      outcome.rest = error.message;
    }
    return outcome;
  },

  // Leave nothing open: after the test has read the page's problems.
  closeAll() {
    for (const socket of sockets.splice(0)) socket.close();
  },
};

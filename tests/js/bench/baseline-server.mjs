// The baseline: Node's socket.io server doing what Palaver does for a channels message —
// store it in MongoDB, then broadcast it to the channel's room and ack the sender — with the
// least code. Only `/new` and `/create-channel` exist so the same bench client can set up.
import http from 'node:http';
import { Server } from 'socket.io';
import { MongoClient } from 'mongodb';

const mongo = new MongoClient(process.env.MONGODB_URI);
await mongo.connect();
const messages = mongo.db(process.env.MONGODB_DATABASE).collection('messages');
const users = new Map();
let nextId = 1;

const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', () => {
    const data = JSON.parse(body || '{}');
    res.setHeader('content-type', 'application/json');
    if (req.url === '/new') {
      const id = String(nextId++);
      users.set(id, { avatarURL: '', id, username: data.username });
      res.statusCode = 201;
      res.end(JSON.stringify({ id, dms: [], token: id }));
    } else if (req.url === '/create-channel') {
      res.statusCode = 201;
      res.end(JSON.stringify({ channel_id: String(nextId++) }));
    } else {
      res.statusCode = 404;
      res.end('null');
    }
  });
});

const io = new Server(server, { cors: { origin: true } });
io.on('connection', (socket) => {
  const user = users.get(socket.handshake.headers.authorisation);
  if (!user) return;
  for (const channel of String(socket.handshake.headers.channels || '').split(',')) {
    if (channel) socket.join(`chat:${channel}`);
  }
  socket.on('message', async (data, ack) => {
    const doc = { channel: data.channel, author: user.id, content: data.content, created_at: new Date() };
    const { insertedId } = await messages.insertOne(doc);
    const view = { author: user, channel_id: data.channel, content: data.content, id: insertedId.toHexString() };
    io.to(`chat:${data.channel}`).emit('message', view);
    if (ack) ack(view);
  });
});

server.listen(Number(process.env.PORT), '127.0.0.1');

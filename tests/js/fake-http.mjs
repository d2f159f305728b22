// What the recording stand-ins share: a JSON HTTP server on 127.0.0.1 whose handler gets each
// request with its whole body, and answers through `reply`.
import { createServer } from 'node:http';

export function reply(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

export function serve(port, handle) {
  createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk) => { raw += chunk; });
    req.on('end', () => handle(req, res, raw));
  }).listen(Number(port), '127.0.0.1');
}

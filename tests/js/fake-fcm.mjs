// A recording stand-in for Google's OAuth token endpoint and FCM HTTP v1, run as a process by
// tests/run.sh: `node fake-fcm.mjs PORT CREDENTIALS_PATH`. It writes a service-account key
// (a fresh RSA key, token_uri pointing here) for Palaver, answers every send with 200, and
// serves what it received at GET /sent (DELETE /sent forgets it).
import { reply, serve } from './fake-http.mjs';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';

const [port, credentialsPath] = process.argv.slice(2);
const base = `http://127.0.0.1:${port}`;
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
writeFileSync(credentialsPath, JSON.stringify({
  type: 'service_account',
  project_id: 'palaver-test',
  private_key_id: 'test-key',
  private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
  client_email: 'push@palaver-test.iam.gserviceaccount.com',
  client_id: '1',
  token_uri: `${base}/token`,
}), { mode: 0o600 });

let sent = [];
serve(port, (req, res, raw) => {
  if (req.method === 'POST' && req.url === '/token') {
    return reply(res, 200, { access_token: 'fake-access-token', expires_in: 3600, token_type: 'Bearer' });
  }
  if (req.method === 'POST' && req.url.startsWith('/v1/projects/')) {
    sent.push({ path: req.url, authorization: req.headers.authorization, body: JSON.parse(raw) });
    return reply(res, 200, { name: `projects/palaver-test/messages/${sent.length}` });
  }
  if (req.url === '/sent' && req.method === 'GET') return reply(res, 200, sent);
  if (req.url === '/sent' && req.method === 'DELETE') { sent = []; return reply(res, 200, {}); }
  return reply(res, 404, { error: 'not found' });
});

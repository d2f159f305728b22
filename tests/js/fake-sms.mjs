// A recording stand-in for Twilio Verify v2, run as a process by tests/run.sh:
// `node fake-sms.mjs PORT`. Accounts `AC-test` with token `test-token` only.
//   POST /v2/Services/:service/Verifications      To, Channel: makes and "sends" a 6-digit code
//   POST /v2/Services/:service/VerificationCheck  To, Code: approved, pending (wrong; five
//        wrong ones end it) or 404 when the number has no verification going
//   GET /sent?to=+65...   every code sent (to that number), oldest first
//   POST /fail?to=+65...  the next send to that number answers 503, as an outage would. It
//        names a number because tests share this fake: one test's outage must not fall on
//        another test's send.
import { reply, serve } from './fake-http.mjs';
import { randomInt } from 'node:crypto';

const [port] = process.argv.slice(2);
const AUTH = `Basic ${Buffer.from('AC-test:test-token').toString('base64')}`;

const sent = [];
const pending = new Map(); // service + to -> { code, attempts }
const failNext = new Set(); // numbers whose next send fails

serve(port, (req, res, raw) => {
  const url = new URL(req.url, 'http://localhost');
  if (req.method === 'GET' && url.pathname === '/sent') {
    const to = url.searchParams.get('to');
    return reply(res, 200, sent.filter((s) => !to || s.to === to));
  }
  if (req.method === 'POST' && url.pathname === '/fail') {
    const to = url.searchParams.get('to');
    if (!to) return reply(res, 400, { message: 'name the number: /fail?to=+65...' });
    failNext.add(to);
    return reply(res, 200, {});
  }
  const route = url.pathname.match(/^\/v2\/Services\/([^/]+)\/(Verifications|VerificationCheck)$/);
  if (req.method !== 'POST' || !route) return reply(res, 404, { code: 20404, message: 'not found' });
  if (req.headers.authorization !== AUTH) return reply(res, 401, { code: 20003, message: 'Authenticate' });
  const [, service, resource] = route;
  const form = new URLSearchParams(raw);
  const to = form.get('To');
  if (!to || !/^\+\d{5,15}$/.test(to)) return reply(res, 400, { code: 60200, message: 'Invalid parameter `To`' });
  const key = `${service} ${to}`;
  if (resource === 'Verifications') {
    if (failNext.delete(to)) {
      return reply(res, 503, { code: 20503, message: 'Service unavailable' });
    }
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    pending.set(key, { code, attempts: 0 });
    sent.push({ to, channel: form.get('Channel'), service, code, at: Date.now() });
    return reply(res, 201, { sid: `VE${sent.length}`, service_sid: service, to, channel: 'sms', status: 'pending', valid: false });
  }
  const going = pending.get(key);
  if (!going) return reply(res, 404, { code: 20404, message: 'The requested resource was not found' });
  if (form.get('Code') === going.code) {
    pending.delete(key);
    return reply(res, 200, { to, status: 'approved', valid: true });
  }
  going.attempts += 1;
  if (going.attempts >= 5) pending.delete(key);
  return reply(res, 200, { to, status: 'pending', valid: false });
});

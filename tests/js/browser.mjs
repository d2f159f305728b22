// A real browser for the tests: Debian's headless Chromium driven by puppeteer-core (which
// downloads no browser of its own), and web pages served from an origin of their own, as a
// browser app is served from its own domain and calls Palaver across origins.
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';

const CHROMIUM = process.env.TEST_CHROMIUM || '/usr/bin/chromium';

// Chromium as the machine's closed network wants it: no sandbox (tests may run as root), and
// none of the background connections to Google's hosts that would fail at every start.
export async function launchBrowser() {
  const profile = mkdtempSync(join(tmpdir(), 'palaver-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
  const close = browser.close.bind(browser);
  browser.close = async () => {
    await close();
    rmSync(profile, { recursive: true, force: true });
  };
  return browser;
}

// Serve `files` (path -> { type, body } or a file to read) on 127.0.0.1 at a port of its own:
// an origin of its own. Resolves to { origin, close }.
export async function servePages(files) {
  const server = http.createServer((req, res) => {
    const file = files[new URL(req.url, 'http://page').pathname];
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    const body = typeof file.body === 'string' || Buffer.isBuffer(file.body) ? file.body : readFileSync(file.path);
    res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' }).end(body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

// Everything a page reports going wrong, as its developer would see it in the console:
// errors logged, exceptions thrown, requests that failed (CORS refusals among them) and
// answers of 400 or more.
export function watchPage(page) {
  const problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`exception: ${error.message}`));
  page.on('requestfailed', (request) => {
    problems.push(`failed: ${request.method()} ${request.url()} ${request.failure()?.errorText}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`answered ${response.status()}: ${response.url()}`);
  });
  return problems;
}

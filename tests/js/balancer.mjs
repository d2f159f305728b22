// Debian's HAProxy in front of two Palaver nodes on one database and one Redis, with the
// configuration operators are given (docker/haproxy.cfg): sticky sessions, the client's
// address sent by the PROXY protocol, health checks on /readyz. Clients pick their own
// loopback address (127.0.0.x), so the nodes see many clients behind one proxy.
import http from 'node:http';
import { join } from 'node:path';
import { env, freePort, run, sleep, startPalaver, redisServer, waitForPort } from './nodes.mjs';

const CONFIG = join(import.meta.dirname, '../../docker/haproxy.cfg');

// An HTTP agent whose connections leave from `address`: for node:http, ws and both
// socket.io-client generations (their `agent` option).
const agents = new Map();
export function agentFrom(address) {
  if (!agents.has(address)) agents.set(address, new http.Agent({ localAddress: address, keepAlive: true }));
  return agents.get(address);
}

// A request from `address`: its status, JSON body and headers.
export function request(base, method, path, { from = '127.0.0.1', body, headers = {} } = {}) {
  const url = new URL(path, base);
  const data = body === undefined ? undefined : JSON.stringify(body);
  const options = {
    method, hostname: url.hostname, port: url.port, path: url.pathname + url.search,
    agent: agentFrom(from),
    headers: { ...(data ? { 'content-type': 'application/json' } : {}), ...headers },
  };
  return new Promise((resolve, reject) => {
    const req = http.request(options, (res) => {
      let text = '';
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, body: text ? JSON.parse(text) : null, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

// Two nodes that trust the proxy, and HAProxy in front: `base` is the balancer's URL.
// `restart(node)` is a rolling restart of one node: SIGTERM, a clean exit, the node back on
// its address, and the balancer sending it traffic again.
export async function balancedNodes(name, settings = {}) {
  const redis = redisServer(`${name}-redis`);
  await redis.start();
  const shared = {
    REDIS_URL: `redis://127.0.0.1:${redis.port}`,
    TRUSTED_PROXIES: '127.0.0.1',
    PROXY_PROTOCOL: 'true',
    ...settings,
  };
  const ports = [await freePort(), await freePort()];
  const nodes = await Promise.all(ports.map((port, i) => startPalaver(`${name}-${['one', 'two'][i]}`, shared, port)));
  const port = await freePort();
  const proxy = run(`${name}-haproxy`, env('TEST_HAPROXY'), ['-db', '-f', CONFIG], {
    PALAVER_BIND: `127.0.0.1:${port}`,
    PALAVER_NODE_ONE: `127.0.0.1:${ports[0]}`,
    PALAVER_NODE_TWO: `127.0.0.1:${ports[1]}`,
  });
  await waitForPort(port, proxy, `${name}-haproxy`);
  const cluster = {
    base: `http://127.0.0.1:${port}`,
    nodes,
    redis,
    proxy,
    // Which node the balancer sends a client at `address` to: the sticky cookie it sets.
    async nodeFor(address) {
      const { headers } = await request(this.base, 'GET', '/healthz', { from: address });
      const cookie = (headers['set-cookie'] || []).join(';');
      return /palaver_node=one/.test(cookie) ? 0 : /palaver_node=two/.test(cookie) ? 1 : -1;
    },
    // `count` loopback addresses that the balancer sends to node `index`, from 127.0.0.`first` on.
    async addressesOn(index, count, first = 2) {
      const found = [];
      for (let last = first; found.length < count && last < 255; last++) {
        const address = `127.0.0.${last}`;
        if (await this.nodeFor(address) === index) found.push(address);
      }
      if (found.length < count) throw new Error(`only ${found.length} addresses reach node ${index}`);
      return found;
    },
    // Until both nodes are in rotation: every node answers through the balancer.
    async inRotation() {
      for (let i = 0; i < 100; i++) {
        const seen = new Set();
        for (let last = 2; last < 40; last++) seen.add(await this.nodeFor(`127.0.0.${last}`));
        if (seen.has(0) && seen.has(1)) return;
        await sleep(200);
      }
      throw new Error('the balancer never sent traffic to both nodes');
    },
    async restart(index) {
      const node = this.nodes[index];
      node.child.kill('SIGTERM');
      const code = await node.child.exited;
      if (code !== 0) throw new Error(`${node.name} exited with ${code}`);
      this.nodes[index] = await startPalaver(node.name, shared, ports[index]);
      await this.inRotation();
    },
    async stop() {
      proxy.kill('SIGTERM');
      await proxy.exited;
      await Promise.all(this.nodes.map((node) => node.stop()));
      if (redis.child?.exitCode === null) await redis.stop();
      for (const agent of agents.values()) agent.destroy();
      agents.clear();
    },
  };
  await cluster.inRotation();
  return cluster;
}

// Processes a test starts itself and stops: Palaver nodes with settings of their own (a Redis,
// a CORS policy, the Admin UI), and a Redis. Each writes its log under TEST_LOGS.
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with tests/run.sh`);
  return value;
};
export const LOGS = process.env.TEST_LOGS || mkdtempSync(join(tmpdir(), 'palaver-nodes-'));
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
// What the nodes a test starts sign their tokens with.
export const JWT_SECRET = `tests-${process.pid}`;

export function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export async function waitForPort(port, child, name) {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`${name} exited (see ${LOGS}/${name}.log)`);
    const open = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => { socket.end(); resolve(true); });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await sleep(100);
  }
  throw new Error(`${name} did not listen on ${port}`);
}

// A child process whose output goes to LOGS/<name>.log; `exited` settles when it ends.
export function run(name, command, args, extraEnv = {}) {
  const child = spawn(command, args, { env: { ...process.env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(join(LOGS, `${name}.log`), { flags: 'a' });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  child.exited = new Promise((resolve) => child.once('exit', resolve));
  return child;
}

// A Redis of a test's own, that it may stop and start again on the same port.
export function redisServer(name) {
  return {
    port: 0,
    child: null,
    async start() {
      this.port ||= await freePort();
      this.child = run(name, env('TEST_REDIS_SERVER'), ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
      await waitForPort(this.port, this.child, name);
    },
    async stop() {
      this.child.kill('SIGKILL');
      await this.child.exited;
    },
  };
}

// A port for a cluster node: its cluster bus listens 10,000 above it, so that one must be a
// port too, and free.
async function clusterPort() {
  for (;;) {
    const port = await freePort();
    if (port > 55535) continue;
    const free = await new Promise((resolve) => {
      const server = net.createServer().once('error', () => resolve(false))
        .listen(port + 10000, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

// A Redis Cluster of three masters, each with a replica, on loopback, made by
// `redis-cli --cluster create`; a failed master's replica takes over within seconds. `url` is
// what REDIS_URL takes for it: its seeds, comma-separated.
export function redisCluster(name) {
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  const cli = env('TEST_REDIS_SERVER').replace(/redis-server$/, 'redis-cli');
  const nodes = [];
  const ask = (port, ...args) => new Promise((resolve) => {
    const child = spawn(cli, ['-p', String(port), ...args]);
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.on('close', () => resolve(out));
    child.on('error', () => resolve(''));
  });
  return {
    nodes,
    url: '',
    async start() {
      for (let i = 0; i < 6; i++) {
        const port = await clusterPort();
        const child = run(`${name}-${i}`, env('TEST_REDIS_SERVER'), [
          '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
          '--cluster-enabled', 'yes', '--cluster-node-timeout', '1000', '--repl-diskless-sync-delay', '0',
          '--cluster-config-file', `nodes-${port}.conf`, '--dir', dir,
        ]);
        await waitForPort(port, child, `${name}-${i}`);
        nodes.push({ port, child });
      }
      const create = run(`${name}-create`, cli, [
        '--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes',
      ]);
      const code = await create.exited;
      if (code !== 0) throw new Error(`redis-cli --cluster create exited with ${code}`);
      // Every node says the cluster is ok, and every replica is in step with its master.
      for (let tries = 0; ; tries++) {
        const states = await Promise.all(nodes.map(async ({ port }) => {
          const info = await ask(port, 'cluster', 'info');
          const replication = await ask(port, 'info', 'replication');
          return info.includes('cluster_state:ok')
            && (replication.includes('master_link_status:up') || replication.includes('connected_slaves:1'));
        }));
        if (states.every(Boolean)) break;
        if (tries > 300) throw new Error('the Redis Cluster did not come up');
        await sleep(100);
      }
      this.url = nodes.slice(0, 3).map((n) => `redis://127.0.0.1:${n.port}`).join(',');
    },
    async stop() {
      await Promise.all(nodes.map(async ({ child }) => {
        if (child.exitCode === null) child.kill('SIGKILL');
        await child.exited;
      }));
    },
  };
}

// Whether the many-node tests run on a Redis Cluster rather than a single Redis.
export const ON_CLUSTER = process.env.TEST_REDIS_CLUSTER === '1';

// A single Redis, or a Redis Cluster when ON_CLUSTER: `url` is what REDIS_URL takes.
export async function sharedRedis(name) {
  if (ON_CLUSTER) {
    const cluster = redisCluster(`${name}-redis-cluster`);
    await cluster.start();
    return cluster;
  }
  const redis = redisServer(`${name}-redis`);
  await redis.start();
  redis.url = `redis://127.0.0.1:${redis.port}`;
  return redis;
}

// A Palaver node on the tests' database, pushing to the FCM stand-in and sending codes
// through the SMS one, with `settings` on top (DATABASE, REDIS_URL, CORS_ORIGINS, ...).
// `base` is its URL; `stop()` ends it.
export async function startPalaver(name, settings = {}, port = 0) {
  port ||= await freePort();
  const child = run(name, env('PALAVER_BIN'), [], {
    HOST: '127.0.0.1', PORT: String(port), MONGODB_URI: env('TEST_MONGODB_URI'),
    MONGODB_DATABASE: env('PALAVER_DATABASE'), JWT_SECRET,
    DATA_DIR: mkdtempSync(join(tmpdir(), 'palaver-node-')),
    FCM_CREDENTIALS: env('FAKE_FCM_CREDENTIALS'), FCM_BASE_URL: env('FAKE_FCM_URL'),
    TWILIO_ACCOUNT_SID: 'AC-test', TWILIO_AUTH_TOKEN: 'test-token', TWILIO_VERIFY_SERVICE_SID: 'VA-test',
    TWILIO_BASE_URL: env('FAKE_SMS_URL'), RUST_LOG: process.env.RUST_LOG || 'info',
    // Every client here comes from 127.0.0.1 (see start_palaver in tests/lib.sh).
    SIGN_UPS_PER_MINUTE: '1000000',
    ...settings,
  });
  await waitForPort(port, child, name);
  return {
    name,
    child,
    base: `http://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await child.exited;
    },
  };
}

// Two nodes sharing a Redis of their own (and the tests' database unless `settings` names
// another): `stop()` ends them all, whatever state a test left them in.
export async function twoNodes(name, settings = {}) {
  const redis = await sharedRedis(name);
  const shared = { REDIS_URL: redis.url, ...settings };
  const [one, two] = await Promise.all([startPalaver(`${name}-one`, shared), startPalaver(`${name}-two`, shared)]);
  return {
    redis,
    one,
    two,
    async stop() {
      await Promise.all([one.stop(), two.stop()]);
      if (redis.nodes || redis.child?.exitCode === null) await redis.stop();
    },
  };
}

// Connections a test file opens, closed when it is done whatever happened.
export function connections() {
  const open = [];
  return {
    track(connection) {
      open.push(connection);
      return connection;
    },
    closeAll() {
      for (const connection of open.splice(0)) connection.close();
    },
  };
}

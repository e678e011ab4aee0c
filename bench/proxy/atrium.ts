/**
 * Atrium for bench/proxy, as its own process: the real server (store,
 * identity, proxy) with N workspaces of team `bench` registered and running,
 * whose runtime places every workspace's `http` endpoint at the benchmark's
 * upstream on loopback, the way a Kubernetes runtime hands out a pod
 * address. `seed` registers the workspaces and exits; `serve` (on a seeded
 * directory, so the server starts as it would with them already recorded)
 * prints one JSON line when it answers: { url, token, port }.
 *
 * It runs the built server (`dist/`), as people run Atrium: run.ts turns
 * this file alone into JavaScript (types stripped) and starts it with plain
 * `node`, no TypeScript loader in the process being measured.
 *   node atrium.mjs seed|serve DATA_DIR UPSTREAM_PORT WORKSPACES REPO_ROOT
 */
import { connect } from 'node:net';
import { join } from 'node:path';
import type * as ConfigModule from '../../src/config/index.js';
import type * as ServerModule from '../../src/server/index.js';
import type { Runtime } from '../../src/runtime/index.js';

const [mode, dataDir, upstreamArg, countArg, repo] = process.argv.slice(2);
if (!repo) throw new Error('usage: atrium.mjs seed|serve DATA_DIR UPSTREAM_PORT WORKSPACES REPO_ROOT');
const { loadConfig } = (await import(join(repo, 'dist/config/index.js'))) as typeof ConfigModule;
const { createServer } = (await import(join(repo, 'dist/server/index.js'))) as typeof ServerModule;
const upstreamPort = Number(upstreamArg);
const count = Number(countArg);

const config = loadConfig({
  env: { ATRIUM_LOG_LEVEL: 'warn' },
  // the agent binary built by scripts/deps.sh: its relay mode carries WebSockets, as in production
  flags: { 'listen.port': 0, 'ssh.enabled': false, dataDir, database: `sqlite:${dataDir}/atrium.db`, 'runtime.kind': 'none', 'runtime.agent': join(repo, 'dist/agent/atrium-agent'), 'proxy.activityFlush': '30s', 'metrics.open': true, 'proxy.maxTunnelsPerUser': 100_000, 'proxy.maxTunnelsPerWorkspace': 100_000 },
});

const running = new Set<string>();
/** Every workspace is the upstream: nothing to start or stop, always reachable at the same address. */
const upstreamRuntime: Runtime = {
  name: 'upstream',
  async ensureTenant() {},
  async start(spec) {
    running.add(spec.id);
  },
  async stop(id) {
    running.delete(id);
  },
  async remove(id) {
    running.delete(id);
  },
  async inventory() {
    return [...running].map((workspaceId) => ({ workspaceId, phase: 'running' as const }));
  },
  // nothing ever changes on its own here: the stream ends when asked to
  async *observe(signal) {
    await new Promise((resolve) => signal.addEventListener('abort', resolve));
    yield* [];
  },
  async endpoint() {
    const address = { host: '127.0.0.1', port: upstreamPort };
    return {
      address,
      headers: {},
      connect: () =>
        new Promise((resolve, reject) => {
          const s = connect(upstreamPort, '127.0.0.1');
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        }),
    };
  },
  async *logs() {},
  async activity() {
    return { cpuSeconds: 0, gpuUtilization: null, sshSessions: 0, busyKernels: 0, appLastActivity: null };
  },
  async authorize() {},
  async notify() {},
  async capacity() {
    return { cpuMilli: 1_000_000_000, memoryBytes: 2 ** 52, gpus: [], allocated: { cpuMilli: 0, memoryBytes: 0 }, tiers: { standard: true }, publicEgress: 'no egress here' };
  },
};

const server = await createServer(config, {
  runtime: async () => ({
    runtime: upstreamRuntime,
    machine: { name: 'bench', allocatable: { cpuMilli: 1_000_000_000, memoryBytes: 2 ** 52 }, gpus: {}, tiers: { standard: true }, publicEgress: 'no egress here' },
  }),
});
const { store, identity } = server;
if (mode === 'seed') {
  await identity.bootstrapAdmin('admin', 'bench-admin-password');
  const user = await store.users.create({ username: 'bench', email: null, passwordHash: null, admin: false }, { cpuMilli: 1e12, memoryBytes: 2 ** 60, storageBytes: 2 ** 60, workspaces: count + 10, gpus: {} });
  const team = (await store.teams.byName('bench'))!;
  const profile = config.profiles.find((p) => p.name === 'small')!;
  for (let i = 0; i < count; i++) {
    const ws = await store.workspaces.create({ teamId: team.id, owner: user, name: `ws${i}`, profile, shared: false, start: true });
    // reported for the generation asked for, so the reconciler finds them settled and leaves them be
    await store.workspaceStates.report(ws.id, { phase: 'starting', message: 'bench', observedGeneration: ws.generation });
    await store.workspaceStates.report(ws.id, { phase: 'running', message: 'bench', observedGeneration: ws.generation });
  }
  await server.close();
  process.exit(0);
}
// ids only: the harness must not leave ten thousand workspace objects behind in the heap being measured
for (const r of await store.db.selectFrom('workspaces').select('id').where('phase', '=', 'running').execute()) running.add(r.id);
const user = (await store.users.byUsername('bench'))!;
const { token } = await identity.issueToken(user, 'bench', null);
const url = await server.listen();
process.stdout.write(`${JSON.stringify({ url, token, port: Number(new URL(url).port) })}\n`);
const stop = async () => {
  await server.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());

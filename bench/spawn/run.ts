/**
 * bench/spawn: create→running of workspaces through Atrium's API, shell and
 * Jupyter, 1 and 10 at once, nothing pre-warmed, against the same Jupyter
 * server spawned by JupyterHub 3.0 (LocalProcessSpawner) in the same run.
 * Also Atrium's own overhead (request sent → sandbox PID 1 started, read from
 * /proc outside Atrium's code) and the RSS of the platform's per-workspace
 * processes (the agent, PID 1 inside, and its log writer on the host).
 *
 * The image case (`--only image`): a Jupyter image built from this machine's
 * Debian packages (test/oci-image.ts) is imported, then timed on its first
 * start (umoci unpacks it), on a start reusing the unpacked root, and against
 * a host-root start of the same Jupyter, rounds interleaved.
 *
 * The egress case (`--only egress`) is bench/egress, run as it is: a
 * 256 MiB download through a workspace's filtered path against the same
 * download from the uplink's side, unfiltered.
 *
 * BENCH_NODE_ARGS passes options to the server's node (e.g. `--cpu-prof
 * --cpu-prof-dir=/tmp/prof` writes a CPU profile when it stops).
 *
 *   npx tsx bench/spawn/run.ts [--reps1 5] [--reps10 3] [--reps-image 5] [--only floor,atrium,jupyterhub,image,egress]
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serverEvents } from '../../src/cli/index.js';
import { buildImage } from '../../test/oci-image.js';
import { machineBusySeconds, treeCpuSeconds } from '../lib/cpu.js';
import { REPO_ROOT } from '../lib/paths.js';
import { spawn } from 'node:child_process';
import { ensureDebianPackages } from '../lib/deps.js';
import { cleanupAll, cleanupOnSignals, freePort, onCleanup, run, startProcess, stopProcess, waitUntil, type Managed } from '../lib/proc.js';

const argv = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : fallback;
};
if (argv.includes('--help')) {
  process.stdout.write('usage: npx tsx bench/spawn/run.ts [--reps1 N] [--reps10 N] [--reps-image N] [--only floor,atrium,jupyterhub,image,egress]\n');
  process.exit(0);
}
const REPS1 = Number(opt('reps1', '5'));
const REPS10 = Number(opt('reps10', '3'));
const REPS_IMAGE = Number(opt('reps-image', '5'));
const ONLY = opt('only', 'floor,atrium,jupyterhub,image,egress').split(',');
const started = performance.now();
const log = (msg: string) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;

interface Round {
  /** first request sent → last workspace ready, seconds */
  wall: number;
  /** per workspace, request sent → ready, seconds */
  each: number[];
  /** per workspace, request sent → sandbox PID 1 started, ms (Atrium only) */
  overheadMs: number[];
  /** per workspace, RSS of the agent and its log writer, MiB (Atrium only) */
  platformRssMiB: number[];
  /** CPU seconds the round cost, from first request to last ready (where they can be told apart) */
  cpu?: RoundCpu;
}

interface RoundCpu {
  /** the machine as a whole: every process, the benchmark's own included */
  machine: number;
  /** the Jupyter (or shell) servers: the sandboxes' cgroups, or the bare servers' processes */
  servers: number;
  /** the control plane: its process and its children (runc, the agent's launcher, mkfs, mount) */
  controlPlane: number;
  /** this benchmark's process (its requests and polling) */
  client: number;
}

/** Reads the CPU counters a round is charged from; `end()` returns the differences. */
function cpuWindow(opts: { controlPlane?: number; cgroup?: string; servers?: () => number }): { end(): RoundCpu } {
  const cg = () => (opts.cgroup && existsSync(opts.cgroup) ? Number(readFileSync(opts.cgroup, 'utf8')) / 1e9 : 0);
  const cp = () => (opts.controlPlane ? treeCpuSeconds(opts.controlPlane) : 0);
  const me = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
  const m0 = machineBusySeconds(), s0 = cg(), c0 = cp(), me0 = me();
  return {
    end: () => ({ machine: machineBusySeconds() - m0, servers: cg() - s0 + (opts.servers?.() ?? 0), controlPlane: cp() - c0, client: me() - me0 }),
  };
}

// ---- waiting as clients wait: on a Server-Sent Events stream --------------------------------

/** Hands the `data:` of each event of a Server-Sent Events response to `onData` until it returns true; the stream ending first is an error. */
async function untilEvent(res: Response, onData: (data: string) => boolean): Promise<void> {
  if (!res.ok || !res.body) throw new Error(`event stream: HTTP ${res.status} ${await res.text()}`);
  for await (const { data } of serverEvents(res)) if (onData(data)) return;
  throw new Error('event stream ended early');
}

// ---- /proc readings, outside Atrium's code path -------------------------------------------

const CLK_TCK = Number((await run('getconf', ['CLK_TCK'])).trim());
// boot time in epoch ms to 10 ms, from /proc/uptime read at a known instant (btime in /proc/stat is whole seconds)
const BOOT_MS = Date.now() - Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000;

/** Wall-clock start of a process, in epoch ms (resolution 1/CLK_TCK s). */
function processStartMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return BOOT_MS + (Number(fields[19]) * 1000) / CLK_TCK;
}

function rssKiB(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
}

// ---- Atrium ---------------------------------------------------------------------------------

const PROFILES = [
  { name: 'bench-shell', displayName: 'Bench shell', environment: 'shell', cpu: { guarantee: '50m', limit: '1' }, memory: { guarantee: '64Mi', limit: '512Mi' }, storage: '64Mi' },
  { name: 'bench-jupyter', displayName: 'Bench Jupyter', environment: 'jupyter', cpu: { guarantee: '50m', limit: '1' }, memory: { guarantee: '64Mi', limit: '512Mi' }, storage: '64Mi' },
  { name: 'bench-image', displayName: 'Bench image', environment: 'jupyter', image: 'bench/lab', cpu: { guarantee: '50m', limit: '1' }, memory: { guarantee: '64Mi', limit: '512Mi' }, storage: '64Mi' },
];

async function startAtrium(work: string) {
  const main = join(REPO_ROOT, 'dist', 'main.js');
  const agent = join(REPO_ROOT, 'dist', 'agent', 'atrium-agent');
  for (const f of [main, agent]) if (!existsSync(f)) throw new Error(`${f} is missing: run scripts/deps.sh run first`);
  const dataDir = join(work, 'atrium');
  const config = join(work, 'atrium.json');
  writeFileSync(config, JSON.stringify({ profiles: PROFILES, runtime: { agent, reserve: { cpu: '0', memory: '0' }, uidBase: 6_100_000 }, logLevel: 'warn' }));
  const port = await freePort();
  const password = randomBytes(12).toString('hex');
  // BENCH_NODE_ARGS: options for the server's node, e.g. --cpu-prof --cpu-prof-dir=DIR to profile it under the benchmark
  const nodeArgs = (process.env['BENCH_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
  const proc = startProcess('Atrium', process.execPath, [...nodeArgs, main, 'serve', '--config', config, '--port', String(port), '--ssh-port', '0', '--data-dir', dataDir, '--admin-password', password], { logFile: join(work, 'atrium.log') });
  const url = `http://127.0.0.1:${port}`;
  onCleanup('Atrium sandboxes', async () => {
    const root = join(dataDir, 'local', 'runc');
    for (const id of (await run('runc', ['--root', root, 'list', '-q']).catch(() => '')).split('\n').filter(Boolean)) await run('runc', ['--root', root, 'delete', '-f', id]).catch(() => '');
    const mnt = join(dataDir, 'local', 'mnt');
    for (const id of existsSync(mnt) ? readdirSync(mnt) : []) await run('umount', ['-l', join(mnt, id)]).catch(() => '');
  });
  await waitUntil('Atrium to answer', async () => (await fetch(`${url}/healthz`)).ok, { timeoutMs: 60_000, proc });
  const login = await fetch(`${url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password, token: { name: 'bench' } }) });
  const token = ((await login.json()) as { token: string }).token;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(url + path, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
  const stream = (path: string, signal: AbortSignal) => fetch(url + path, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal });
  await call('PATCH', '/api/v1/teams/admin/quota', { workspaces: 100, cpu: '100', memory: '100Gi', storage: '100Gi' });
  return { proc, dataDir, call, stream };
}

async function atriumRound(a: Awaited<ReturnType<typeof startAtrium>>, profile: string, n: number, round: string): Promise<Round> {
  const names = Array.from({ length: n }, (_, i) => `${round}-${i}`);
  const sent = new Map<string, { wall: number; perf: number }>();
  const ready = new Map<string, { perf: number; id: string }>();
  // the team's event stream, opened before the first request, as the portal waits; it replays older rounds' events first
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 120_000);
  const events = await a.stream('/api/v1/teams/admin/events', abort.signal);
  const window = cpuWindow({ controlPlane: a.proc.child.pid!, cgroup: '/sys/fs/cgroup/cpuacct/atrium/cpuacct.usage' });
  const waited = untilEvent(events, (data) => {
    const e = JSON.parse(data) as { type: string; workspace: string | null; data: { phase?: string; reason?: string } };
    if (e.type !== 'phase' || !e.workspace || !sent.has(e.workspace) || ready.has(e.workspace)) return false;
    if (e.data.phase === 'failed') throw new Error(`${e.workspace} failed: ${String(e.data.reason)}`);
    if (e.data.phase === 'running') ready.set(e.workspace, { perf: performance.now(), id: '' });
    return ready.size === n;
  });
  // a failure is rethrown where it is awaited; this keeps it from counting as unhandled meanwhile
  waited.catch(() => undefined);
  try {
    await Promise.all(
      names.map(async (name) => {
        sent.set(name, { wall: Date.now(), perf: performance.now() });
        const r = await a.call('POST', '/api/v1/teams/admin/workspaces', { name, profile });
        if (r.status !== 201) throw new Error(`create ${name}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
      }),
    );
    await waited;
  } catch (err) {
    if (abort.signal.aborted) throw new Error(`workspaces not running after 120 s: ${names.filter((x) => !ready.has(x)).join(', ')}`, { cause: err });
    throw err;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  for (const name of names) ready.get(name)!.id = String((await a.call('GET', `/api/v1/teams/admin/workspaces/${name}`)).body.id);
  const cpu = window.end();
  const overheadMs: number[] = [];
  const platformRssMiB: number[] = [];
  for (const name of names) {
    const id = ready.get(name)!.id;
    const pid = Number(readFileSync(join(a.dataDir, 'local', 'run', id, 'pid'), 'utf8'));
    overheadMs.push(processStartMs(pid) - sent.get(name)!.wall);
    const writer = Number(readFileSync(join(a.dataDir, 'local', 'run', id, 'log-writer.pid'), 'utf8'));
    platformRssMiB.push((rssKiB(pid) + rssKiB(writer)) / 1024);
  }
  await Promise.all(names.map((name) => a.call('DELETE', `/api/v1/teams/admin/workspaces/${name}?purge=true`)));
  const runcRoot = join(a.dataDir, 'local', 'runc');
  await waitUntil('deleted sandboxes to go', async () => (await run('runc', ['--root', runcRoot, 'list', '-q'])).trim() === '', { timeoutMs: 60_000 });
  const each = names.map((x) => (ready.get(x)!.perf - sent.get(x)!.perf) / 1000);
  const wall = (Math.max(...names.map((x) => ready.get(x)!.perf)) - Math.min(...names.map((x) => sent.get(x)!.perf))) / 1000;
  return { wall, each, overheadMs, platformRssMiB, cpu };
}

// ---- JupyterHub -----------------------------------------------------------------------------

/** System users with homes below `work`, removed (with their processes) at the end. */
async function makeUsers(work: string, users: string[]): Promise<Array<{ name: string; uid: number; gid: number; home: string }>> {
  const made = [];
  for (const u of users) {
    await run('userdel', ['-r', u]).catch(() => '');
    const home = join(work, 'homes', u);
    await run('useradd', ['--system', '--create-home', '--home-dir', home, '--shell', '/usr/sbin/nologin', u]);
    onCleanup(`user ${u}`, async () => {
      await run('pkill', ['-KILL', '-u', u]).catch(() => '');
      await run('userdel', ['-r', u]).catch(() => '');
    });
    made.push({ name: u, uid: Number((await run('id', ['-u', u])).trim()), gid: Number((await run('id', ['-g', u])).trim()), home });
  }
  return made;
}

// ---- the floor: the same Jupyter server started by hand -------------------------------------

/**
 * `n` bare `jupyter-notebook` servers started together, each as its own user
 * from its home, the command and options Atrium runs inside a sandbox; each is
 * ready when `GET /api` answers 200, polled every 25 ms as Atrium's readiness
 * probe does. What no platform can beat on this host.
 */
async function floorRound(users: Array<{ name: string; uid: number; gid: number; home: string }>): Promise<Round> {
  const ports = await Promise.all(users.map(() => freePort()));
  const sent: number[] = [];
  const ready: number[] = [];
  let cpu: RoundCpu | undefined;
  const serverCpu = () => children.reduce((sum, c) => { try { return sum + treeCpuSeconds(c.pid!); } catch { return sum; } }, 0);
  const window = cpuWindow({ servers: () => serverCpu() });
  const children = users.map((u, i) => {
    sent[i] = performance.now();
    const env: NodeJS.ProcessEnv = { HOME: u.home, USER: u.name, LOGNAME: u.name, PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8', JUPYTER_TOKEN: 'bench' };
    return spawn('/usr/bin/jupyter-notebook', ['--no-browser', '--ip=127.0.0.1', `--port=${ports[i]}`, '--port-retries=0', '--NotebookApp.base_url=/floor/', '--NotebookApp.allow_remote_access=True', `--NotebookApp.notebook_dir=${u.home}`, '--NotebookApp.quit_button=False'], { uid: u.uid, gid: u.gid, cwd: u.home, env, stdio: 'ignore' });
  });
  try {
    await Promise.all(users.map(async (_, i) => {
      const deadline = Date.now() + 120_000;
      for (;;) {
        if (Date.now() > deadline) throw new Error('a bare Jupyter server did not answer within 120 s');
        if (children[i]!.exitCode !== null) throw new Error(`a bare Jupyter server exited with ${children[i]!.exitCode}`);
        const ok = await fetch(`http://127.0.0.1:${ports[i]}/floor/api`).then((r) => r.status === 200, () => false);
        if (ok) break;
        await sleep(25);
      }
      ready[i] = performance.now();
    }));
    cpu = window.end();
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', r)))));
  }
  const each = users.map((_, i) => (ready[i]! - sent[i]!) / 1000);
  return { wall: (Math.max(...ready) - Math.min(...sent)) / 1000, each, overheadMs: [], platformRssMiB: [], ...(cpu ? { cpu } : {}) };
}

async function startHub(work: string, users: string[]) {
  const dir = join(work, 'hub');
  const [publicPort, hubPort, proxyApiPort] = [await freePort(), await freePort(), await freePort()];
  const token = randomBytes(32).toString('hex');
  const py = (s: string) => JSON.stringify(s);
  await run('mkdir', ['-p', dir]);
  writeFileSync(
    join(dir, 'jupyterhub_config.py'),
    `c = get_config()  # noqa
c.JupyterHub.ip = '127.0.0.1'
c.JupyterHub.port = ${publicPort}
c.JupyterHub.hub_ip = '127.0.0.1'
c.JupyterHub.hub_port = ${hubPort}
c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:${proxyApiPort}'
c.ConfigurableHTTPProxy.command = ['/usr/bin/configurable-http-proxy']
c.JupyterHub.db_url = ${py(`sqlite:///${join(dir, 'jupyterhub.sqlite')}`)}
c.JupyterHub.cookie_secret_file = ${py(join(dir, 'cookie_secret'))}
c.JupyterHub.authenticator_class = 'dummy'
c.JupyterHub.spawner_class = 'jupyterhub.spawner.LocalProcessSpawner'
c.Spawner.cmd = ['/usr/bin/jupyterhub-singleuser']
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.JupyterHub.cleanup_servers = True
c.JupyterHub.services = [{'name': 'bench', 'api_token': ${py(token)}}]
c.JupyterHub.load_roles = [{'name': 'bench', 'scopes': ['admin:users', 'admin:servers', 'read:users', 'list:users'], 'services': ['bench']}]
c.Application.log_level = 'WARN'
`,
  );
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_PATH: '/usr/share/nodejs:/usr/lib/nodejs' };
  delete env.PYTHONPATH;
  delete env.PYTHONHOME;
  const proc: Managed = startProcess('JupyterHub', '/usr/bin/python3', ['/usr/bin/jupyterhub', '-f', join(dir, 'jupyterhub_config.py')], { cwd: dir, env, logFile: join(dir, 'jupyterhub.log') });
  const base = `http://127.0.0.1:${hubPort}/hub/api`;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(base + path, { method, headers: { authorization: `token ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
  const stream = (path: string, signal: AbortSignal) => fetch(base + path, { headers: { authorization: `token ${token}`, accept: 'text/event-stream' }, signal });
  let version = '';
  await waitUntil('JupyterHub to answer', async () => {
    const r = await call('GET', '/');
    version = typeof r.body.version === 'string' ? r.body.version : '';
    return r.status === 200;
  }, { timeoutMs: 60_000, proc });
  const created = await call('POST', '/users', { usernames: users });
  if (created.status !== 201) throw new Error(`JupyterHub refused the users: ${created.status}`);
  return { proc, call, stream, version };
}

async function hubRound(h: Awaited<ReturnType<typeof startHub>>, users: string[]): Promise<Round> {
  const sent = new Map<string, number>();
  const window = cpuWindow({ controlPlane: h.proc.child.pid! });
  await Promise.all(
    users.map(async (u) => {
      sent.set(u, performance.now());
      const r = await h.call('POST', `/users/${u}/server`);
      if (r.status !== 201 && r.status !== 202) throw new Error(`spawn ${u}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    }),
  );
  // each server's progress stream, as JupyterHub's spawn page waits; its last event says ready
  const ready = new Map<string, number>();
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 180_000);
  try {
    await Promise.all(
      users.map(async (u) => {
        const res = await h.stream(`/users/${u}/server/progress`, abort.signal);
        await untilEvent(res, (data) => {
          const e = JSON.parse(data) as { ready?: boolean; failed?: boolean; message?: string };
          if (e.failed) throw new Error(`${u}'s server failed: ${String(e.message)}`);
          if (e.ready) ready.set(u, performance.now());
          return e.ready === true;
        });
      }),
    );
  } catch (err) {
    if (abort.signal.aborted) throw new Error('JupyterHub servers not ready after 180 s', { cause: err });
    throw err;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  const cpu = window.end();
  await Promise.all(users.map((u) => h.call('DELETE', `/users/${u}/server`)));
  await waitUntil('JupyterHub servers to stop', async () => {
    const states = await Promise.all(users.map(async (u) => Object.keys(((await h.call('GET', `/users/${u}`)).body.servers as object) ?? {}).length));
    return states.every((s) => s === 0);
  }, { timeoutMs: 60_000 });
  const each = users.map((u) => (ready.get(u)! - sent.get(u)!) / 1000);
  const wall = (Math.max(...ready.values()) - Math.min(...sent.values())) / 1000;
  return { wall, each, overheadMs: [], platformRssMiB: [], cpu };
}

// ---- the run --------------------------------------------------------------------------------

cleanupOnSignals();
const work = mkdtempSync(join(tmpdir(), 'atrium-bench-spawn-'));
// the JupyterHub users' homes live below it, and their servers run as those users
chmodSync(work, 0o755);
onCleanup('work directory', () => rmSync(work, { recursive: true, force: true }));
const results: Record<string, Round[]> = {};
try {
  if (ONLY.includes('jupyterhub')) await ensureDebianPackages(['jupyterhub'], log);
  const users = Array.from({ length: 10 }, (_, i) => `jhb-${i}`);
  const made = ONLY.includes('jupyterhub') || ONLY.includes('floor') ? await makeUsers(work, users) : [];
  if (ONLY.includes('jupyterhub')) {
    log('starting JupyterHub 3 with LocalProcessSpawner and 10 system users');
    const hub = await startHub(work, users);
    log(`JupyterHub ${hub.version}: 1 server × ${REPS1}, 10 at once × ${REPS10}`);
    results['JupyterHub jupyter 1'] = [];
    for (let r = 0; r < REPS1; r++) results['JupyterHub jupyter 1'].push(await hubRound(hub, [users[0]!]));
    results['JupyterHub jupyter 10'] = [];
    for (let r = 0; r < REPS10; r++) results['JupyterHub jupyter 10'].push(await hubRound(hub, users));
    await stopProcess(hub.proc);
  }
  const atrium = ONLY.includes('atrium') || ONLY.includes('image') ? (log('starting Atrium with the local runtime'), await startAtrium(work)) : undefined;
  if (atrium && ONLY.includes('image')) {
    log('building a Jupyter image from Debian packages');
    const image = await buildImage(join(work, 'image'), { kind: 'jupyter' });
    const name = encodeURIComponent('bench/lab');
    for (const key of ['import', 'Atrium image-first 1', 'Atrium image-reuse 1', 'Atrium host-root 1']) results[key] = [];
    for (let r = 0; r < REPS_IMAGE; r++) {
      log(`image round ${r + 1}/${REPS_IMAGE}: import, first start, reused root, host root`);
      // a fresh import each round: removing the image removes its unpacked root too
      await atrium.call('DELETE', `/api/v1/images/${name}`);
      const t0 = performance.now();
      const begun = await atrium.call('POST', '/api/v1/images', { source: image.ref, name: 'bench/lab' });
      if (begun.status !== 201) throw new Error(`import: HTTP ${begun.status} ${JSON.stringify(begun.body)}`);
      await waitUntil('the import', async () => (await atrium.call('GET', `/api/v1/images/${name}`)).status === 200, { timeoutMs: 600_000 });
      results['import']!.push({ wall: (performance.now() - t0) / 1000, each: [], overheadMs: [], platformRssMiB: [] });
      results['Atrium image-first 1']!.push(await atriumRound(atrium, 'bench-image', 1, `imgfirst-${r}`));
      results['Atrium image-reuse 1']!.push(await atriumRound(atrium, 'bench-image', 1, `imgreuse-${r}`));
      results['Atrium host-root 1']!.push(await atriumRound(atrium, 'bench-jupyter', 1, `imghost-${r}`));
    }
  }
  if (atrium && ONLY.includes('atrium')) {
    for (const n of [1, 10]) {
      const reps = n === 1 ? REPS1 : REPS10;
      log(`Atrium shell ${n}: ${reps} rounds`);
      results[`Atrium shell ${n}`] = [];
      for (let r = 0; r < reps; r++) results[`Atrium shell ${n}`]!.push(await atriumRound(atrium, 'bench-shell', n, `shell${n}-${r}`));
    }
  }
  // Jupyter in Atrium and by hand, rounds interleaved: this host's speed drifts by a third within the hour, and a ratio of rounds taken minutes apart would measure that
  for (const n of [1, 10]) {
    const reps = n === 1 ? REPS1 : REPS10;
    const both = atrium && ONLY.includes('atrium') && ONLY.includes('floor');
    log(`${atrium && ONLY.includes('atrium') ? `Atrium jupyter ${n}` : ''}${both ? ' and ' : ''}${ONLY.includes('floor') ? `bare jupyter ${n}` : ''}: ${reps} rounds${both ? ', interleaved' : ''}`);
    if (ONLY.includes('floor')) results[`bare jupyter ${n}`] = [];
    if (atrium && ONLY.includes('atrium')) results[`Atrium jupyter ${n}`] = [];
    for (let r = 0; r < reps; r++) {
      if (ONLY.includes('floor')) results[`bare jupyter ${n}`]!.push(await floorRound(made.slice(0, n)));
      if (atrium && ONLY.includes('atrium')) results[`Atrium jupyter ${n}`]!.push(await atriumRound(atrium, 'bench-jupyter', n, `jupyter${n}-${r}`));
    }
  }
} finally {
  await cleanupAll();
}

// ---- report ---------------------------------------------------------------------------------

const rows: string[][] = [['system', 'case', 'median s', 'min s', 'max s', 'vs bare server', 'vs JupyterHub', 'target']];
const summary: Record<string, { median: number; min: number; max: number }> = {};
const IMAGE_KEYS = ['import', 'Atrium image-first 1', 'Atrium image-reuse 1', 'Atrium host-root 1'];
for (const [key, rounds] of Object.entries(results)) {
  if (IMAGE_KEYS.includes(key)) continue;
  const figures = rounds.map((r) => r.wall);
  summary[key] = { median: median(figures), min: Math.min(...figures), max: Math.max(...figures) };
}
const TARGET_VS_FLOOR = 1.15;
/** Per round, `a`'s wall time over `b`'s in the round run right before it. */
function pairedRatios(a: string, b: string): number[] {
  const ra = results[a] ?? [], rb = results[b] ?? [];
  return ra.length === rb.length ? ra.map((r, i) => r.wall / rb[i]!.wall) : [];
}
for (const [key, s] of Object.entries(summary)) {
  const [system, kind, n] = key.split(' ');
  const hub = summary[`JupyterHub jupyter ${n}`];
  const floor = summary[`bare jupyter ${n}`];
  const atriumJupyter = system === 'Atrium' && kind === 'jupyter';
  // Atrium against the floor: the median of the ratios of rounds run side by side; JupyterHub, run apart: the ratio of medians
  const pairs = atriumJupyter ? pairedRatios(`Atrium jupyter ${n}`, `bare jupyter ${n}`) : [];
  const ratio = pairs.length > 0 ? median(pairs) : floor ? s.median / (floor?.median ?? 1) : NaN;
  const vsFloor = floor && (atriumJupyter || system === 'JupyterHub') ? `${ratio.toFixed(2)}×` : system === 'bare' ? 'floor' : '—';
  const vsHub = hub && atriumJupyter ? `${(s.median / hub.median).toFixed(2)}×` : system === 'JupyterHub' ? 'anchor' : '—';
  const target = atriumJupyter && floor ? `≤ ${TARGET_VS_FLOOR}× bare: ${ratio <= TARGET_VS_FLOOR ? 'PASS' : 'MISS'}` : '—';
  const name = system === 'JupyterHub' ? 'JupyterHub 3.0' : system === 'bare' ? 'jupyter-notebook by hand' : 'Atrium';
  rows.push([name, `${kind} × ${n}${n === '10' ? ' (wall)' : ''}`, s.median.toFixed(2), s.min.toFixed(2), s.max.toFixed(2), vsFloor, vsHub, target]);
}
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
process.stdout.write('\ncreate→running, client-observed (request sent → phase running / server ready); vs bare server: the median of per-round ratios, Atrium and bare rounds interleaved\n');
for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(widths[i]!)).join('  ') + '\n');
const cpuRows: string[][] = [['system', 'case', 'machine CPU-s', 'servers', 'control plane', 'this client', 'rest']];
for (const [key, rounds] of Object.entries(results)) {
  const with_ = rounds.filter((r) => r.cpu);
  if (IMAGE_KEYS.includes(key) || with_.length === 0) continue;
  const [system, kind, n] = key.split(' ');
  const m = (f: (c: RoundCpu) => number) => median(with_.map((r) => f(r.cpu!))).toFixed(2);
  const name = system === 'JupyterHub' ? 'JupyterHub 3.0' : system === 'bare' ? 'jupyter-notebook by hand' : 'Atrium';
  // JupyterHub's servers are its own children: its control-plane figure includes them
  cpuRows.push([name, `${kind} × ${n}`, m((c) => c.machine), system === 'JupyterHub' ? '(in hub)' : m((c) => c.servers), m((c) => c.controlPlane), m((c) => c.client), m((c) => c.machine - c.servers - c.controlPlane - c.client)]);
}
if (cpuRows.length > 1) {
  const w = cpuRows[0]!.map((_, i) => Math.max(...cpuRows.map((r) => r[i]!.length)));
  process.stdout.write('\nCPU seconds per round, median (first request → last ready; servers: the sandboxes\' cgroups or the bare processes; control plane: its process tree)\n');
  for (const r of cpuRows) process.stdout.write(r.map((c, i) => c.padEnd(w[i]!)).join('  ') + '\n');
}
if (results['Atrium image-reuse 1']?.length) {
  const m = (key: string) => median(results[key]!.map((r) => r.wall));
  const ratios = results['Atrium image-reuse 1'].map((r, i) => r.wall / results['Atrium host-root 1']![i]!.wall);
  process.stdout.write(`\nImages (${results['import']!.length} rounds, interleaved; a ${'Jupyter'} image of Debian packages):\n`);
  process.stdout.write(`  import (skopeo copy into the store)     median ${m('import').toFixed(2)} s\n`);
  process.stdout.write(`  first start (umoci unpacks the root)    median ${m('Atrium image-first 1').toFixed(2)} s\n`);
  process.stdout.write(`  start reusing the unpacked root         median ${m('Atrium image-reuse 1').toFixed(2)} s\n`);
  process.stdout.write(`  host-root start (anchor)                median ${m('Atrium host-root 1').toFixed(2)} s\n`);
  process.stdout.write(`  reuse / host root: median of per-round ratios ${median(ratios).toFixed(2)}× (medians ${(m('Atrium image-reuse 1') / m('Atrium host-root 1')).toFixed(2)}×) — target ≤ 1.2×: ${median(ratios) <= 1.2 ? 'PASS' : 'MISS'}\n`);
}
const atriumRounds = Object.entries(results).filter(([k]) => k.startsWith('Atrium') && !IMAGE_KEYS.includes(k)).flatMap(([, v]) => v);
if (atriumRounds.length > 0) {
  for (const n of ['1', '10']) {
    const overhead = Object.entries(results).filter(([k]) => k.startsWith('Atrium') && !IMAGE_KEYS.includes(k) && k.endsWith(` ${n}`)).flatMap(([, v]) => v.flatMap((r) => r.overheadMs));
    if (overhead.length === 0) continue;
    process.stdout.write(
      `\nAtrium overhead, ${n} at once: request sent → sandbox PID 1 started (from /proc, ${1000 / CLK_TCK} ms resolution), ${overhead.length} workspaces: ` +
        `p50 ${median(overhead).toFixed(0)} ms, p90 ${pct(overhead, 90).toFixed(0)} ms, max ${Math.max(...overhead).toFixed(0)} ms` +
        ` — target p90 < ${n === '1' ? 150 : 400} ms: ${pct(overhead, 90) < (n === '1' ? 150 : 400) ? 'PASS' : 'MISS'}\n`,
    );
  }
  const rss = atriumRounds.flatMap((r) => r.platformRssMiB);
  process.stdout.write(`Platform processes per running workspace (agent + log writer), RSS: median ${median(rss).toFixed(2)} MiB, max ${Math.max(...rss).toFixed(2)} MiB — target < 15 MB: ${Math.max(...rss) < 15 ? 'PASS' : 'MISS'}\n`);
  const per10 = Object.entries(results).filter(([k]) => k.endsWith(' 10') && !IMAGE_KEYS.includes(k)).map(([k, v]) => `${k}: per-workspace median ${median(v.flatMap((r) => r.each)).toFixed(2)} s, max ${Math.max(...v.flatMap((r) => r.each)).toFixed(2)} s`);
  for (const line of per10) process.stdout.write(`${line}\n`);
}
if (ONLY.includes('egress')) {
  log('egress: bench/egress (256 MiB, 9 rounds)');
  process.stdout.write(`\n${await run(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'bench', 'egress', 'run.ts')])}`);
}
const outDir = join(REPO_ROOT, 'bench', 'out');
await run('mkdir', ['-p', outDir]);
const file = join(outDir, `spawn-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}Z.json`);
writeFileSync(file, JSON.stringify({ results, summary, clockTickMs: 1000 / CLK_TCK }, null, 2));
log(`results written to ${file}; wall time ${((performance.now() - started) / 1000).toFixed(0)}s`);

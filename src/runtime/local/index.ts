import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, open, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Activity, Capacity, Connector, LogOptions, Observation, Runtime, WorkspaceSpec } from '../types.js';
import { ociConfig, type DeviceNode } from './bundle.js';
import { ensureBaseEtc, writeOwnEtc } from './etc.js';
import { run, runWithoutOutput } from './exec.js';
import { writeFileAtomic } from './files.js';
import { controlDevices, discoverGpus, type GpuDevice, type GpuInventoryEntry } from './gpus.js';
import { ensureHome, unmountHome } from './home.js';
import { createRunc } from './runc.js';

export interface LocalRuntimeOptions {
  /** root-only directory for images, sandboxes and keys, e.g. /var/lib/atrium/local */
  dir: string;
  /** the compiled atrium-agent */
  agentPath: string;
  /** the host uid of a user: distinct per user, stable across restarts */
  uidFor(userId: string): Promise<number>;
  /** CPU and memory kept for the system */
  reserve: { cpuMilli: number; memoryBytes: number };
  gpuInventory?: GpuInventoryEntry[];
  pids?: number;
  stopGraceMs?: number;
  runcBinary?: string;
}

const JUPYTER_PORT = 8888;
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const LOG_MAX = 1 << 20;

/** Directory layout of one workspace, all under the runtime's root-only directory. */
function layout(dir: string, id: string) {
  const runDir = join(dir, 'run', id);
  return {
    runDir,
    bundle: join(runDir, 'bundle'),
    rootfs: join(runDir, 'bundle', 'rootfs'),
    etc: join(runDir, 'etc'),
    http: join(runDir, 'http.sock'),
    ssh: join(runDir, 'ssh.sock'),
    log: join(runDir, 'app.log'),
    /** the pid of the host process writing the log, while it runs */
    writerPid: join(runDir, 'log-writer.pid'),
    runcLog: join(runDir, 'runc.log'),
    token: join(runDir, 'app-token'),
    meta: join(runDir, 'meta.json'),
    /** present from the first signal of a stop until it is complete: a stop the control plane died during */
    stopping: join(runDir, 'stopping'),
    image: join(dir, 'homes', `${id}.img`),
    mount: join(dir, 'mnt', id),
    keys: join(dir, 'keys', id),
  };
}

interface Meta {
  owner: string;
  uid: number;
  gpus: number[];
  cpuRequestMilli: number;
  memoryRequestBytes: number;
  environment: WorkspaceSpec['environment']['kind'];
  basePath: string;
}

/** Jupyter's own view of activity: kernels busy now, and its last activity. */
async function jupyterActivity(socketPath: string, basePath: string, token: string): Promise<{ busy: number; last: number | null }> {
  const get = (path: string) =>
    new Promise<unknown>((resolve, reject) => {
      const req = httpRequest({ socketPath, path: `${basePath}${path}`, headers: { authorization: `token ${token}`, host: 'localhost' }, timeout: 3000 }, (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (data.length < 1 << 20) data += c;
        });
        res.on('end', () => {
          try {
            resolve(JSON.parse(data));
          } catch (err) {
            reject(err as Error);
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end();
    });
  // no_track_activity: asking must not count as activity itself
  const kernels = (await get('api/kernels?no_track_activity=1')) as Array<{ execution_state?: string; last_activity?: string }>;
  const status = (await get('api/status')) as { last_activity?: string };
  const times = [status.last_activity, ...kernels.map((k) => k.last_activity)].map((t) => (t ? Date.parse(t) : NaN)).filter((t) => !Number.isNaN(t));
  return { busy: kernels.filter((k) => k.execution_state === 'busy').length, last: times.length > 0 ? Math.max(...times) : null };
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/**
 * Resolves once the host process writing a sandbox's log has written all
 * the sandbox sent (it exits when the sandbox's end of the log pipe has
 * closed), so a stopped sandbox's last lines are read whole; at most a few
 * seconds, as the writer keeps to a rate.
 */
async function logWritten(p: { log: string; writerPid: string }): Promise<void> {
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline) {
    const pid = Number((await readFile(p.writerPid, 'utf8').catch(() => '')).trim());
    if (!pid) return;
    // gone, or its pid already another process's
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.split('\0').includes(p.log)) return;
    await sleep(20);
  }
}

async function tailLines(path: string, lines: number): Promise<string> {
  try {
    const fh = await open(path, 'r');
    try {
      const { size } = await fh.stat();
      const len = Math.min(size, 64 * 1024);
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, size - len);
      return buf.toString('utf8').split('\n').filter((l) => l !== '').slice(-lines).join('\n');
    } finally {
      await fh.close();
    }
  } catch {
    return '';
  }
}

/**
 * The local runtime: each workspace is a runc sandbox on this machine
 * (design §6), reached only through Unix sockets that root binds in a
 * root-only directory and hands to the sandbox's agent.
 */
export async function createLocalRuntime(opts: LocalRuntimeOptions): Promise<Runtime> {
  for (const sub of ['', 'run', 'homes', 'mnt', 'keys', 'runc', 'etc']) await mkdir(join(opts.dir, sub), { recursive: true, mode: 0o700 });
  await chmod(opts.dir, 0o700);
  const runc = createRunc(join(opts.dir, 'runc'), opts.runcBinary);
  // built now, so the first start does not pay for copying the host's /etc
  await ensureBaseEtc(join(opts.dir, 'etc'));
  const gpus = await discoverGpus(opts.gpuInventory);
  const held = new Map<number, string>();
  const locks = new Map<string, Promise<unknown>>();
  const stopGraceMs = opts.stopGraceMs ?? 10_000;

  // Rebuild which GPUs are held from the sandboxes that exist, so a restart of the control plane changes nothing.
  for (const id of await readdir(join(opts.dir, 'run')).catch(() => [] as string[])) {
    const p = layout(opts.dir, id);
    const meta = await readJson<Meta>(p.meta);
    for (const g of meta?.gpus ?? []) held.set(g, id);
    // what a crash left of a replacement being written
    for (const f of await readdir(p.runDir).catch(() => [] as string[])) if (f.endsWith('.tmp')) await rm(join(p.runDir, f), { force: true });
  }

  /** One operation at a time per workspace. */
  function serialized<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = locks.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    locks.set(id, next.catch(() => undefined));
    return next;
  }

  async function hostKey(keysDir: string): Promise<string> {
    const key = join(keysDir, 'ssh_host_ed25519_key');
    if (!existsSync(key)) {
      await mkdir(keysDir, { recursive: true, mode: 0o700 });
      await rm(key, { force: true });
      await rm(`${key}.pub`, { force: true });
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'atrium-workspace', '-f', key]);
    }
    return readFile(key, 'utf8');
  }

  async function rootfs(dir: string): Promise<void> {
    await rm(dir, { recursive: true, force: true });
    for (const d of ['usr', 'etc', 'home/jovyan', 'tmp', 'proc', 'dev', 'sys', '.atrium', 'run', 'var/tmp', 'root']) {
      await mkdir(join(dir, d), { recursive: true, mode: 0o755 });
    }
    // runc gives a tmpfs the mode of the directory it is mounted on
    await chmod(join(dir, 'tmp'), 0o1777);
    await chmod(join(dir, 'var/tmp'), 0o1777);
    await writeFile(join(dir, '.atrium', 'agent'), '');
    for (const l of ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']) {
      if (existsSync(join('/', l))) await symlink(`usr/${l}`, join(dir, l));
    }
  }

  function allocateGpus(id: string, spec: WorkspaceSpec): GpuDevice[] {
    if (spec.gpu.count === 0 || !spec.gpu.type) return [];
    const mine = gpus.filter((g) => held.get(g.index) === id);
    if (mine.length >= spec.gpu.count) return mine.slice(0, spec.gpu.count);
    const free = gpus.filter((g) => g.type === spec.gpu.type && !held.has(g.index));
    const total = gpus.filter((g) => g.type === spec.gpu.type).length;
    if (total === 0) throw new Error(`this machine has no GPU of type ${spec.gpu.type}`);
    if (free.length < spec.gpu.count) throw new Error(`no free GPU of type ${spec.gpu.type}: ${spec.gpu.count} needed, ${free.length} of ${total} free`);
    const chosen = free.slice(0, spec.gpu.count);
    for (const g of chosen) held.set(g.index, id);
    return chosen;
  }

  function release(id: string): void {
    for (const [index, holder] of held) if (holder === id) held.delete(index);
  }

  function appCommand(spec: WorkspaceSpec): { args: string[]; port: number } {
    switch (spec.environment.kind) {
      case 'jupyter':
        return {
          port: JUPYTER_PORT,
          args: [
            'jupyter-notebook', '--no-browser', '--ip=127.0.0.1', `--port=${JUPYTER_PORT}`, '--port-retries=0',
            `--NotebookApp.base_url=${spec.basePath}`, '--NotebookApp.allow_remote_access=True',
            '--NotebookApp.notebook_dir=/home/jovyan', '--NotebookApp.quit_button=False',
          ],
        };
      case 'custom':
        return { args: spec.environment.command ?? [], port: spec.environment.port ?? 8080 };
      case 'shell':
        return { args: [], port: 0 };
    }
  }

  async function stopSandbox(id: string): Promise<void> {
    const p = layout(opts.dir, id);
    let state = await runc.state(id);
    if (state && state.status !== 'stopped') {
      await writeFile(p.stopping, '').catch(() => undefined);
      await runc.kill(id, 'TERM');
      const deadline = Date.now() + stopGraceMs;
      while (Date.now() < deadline && (state = await runc.state(id)) && state.status !== 'stopped') await sleep(100);
      if (state && state.status !== 'stopped') {
        await runc.kill(id, 'KILL');
        for (let i = 0; i < 50 && (state = await runc.state(id)) && state.status !== 'stopped'; i++) await sleep(100);
      }
    }
    if (state) await runc.delete(id);
    await unmountHome(p.mount);
    for (const f of [p.http, p.ssh, p.token]) await rm(f, { force: true });
    await rm(p.bundle, { recursive: true, force: true });
    await rm(p.etc, { recursive: true, force: true });
    release(id);
    const meta = await readJson<Meta>(p.meta);
    if (meta) await writeFileAtomic(p.meta, JSON.stringify({ ...meta, gpus: [] }));
    await rm(p.stopping, { force: true });
  }

  async function startSandbox(spec: WorkspaceSpec): Promise<void> {
    const id = spec.id;
    const p = layout(opts.dir, id);
    let existing = await runc.state(id);
    // a sandbox a crashed control plane had begun to stop is on its way out: finish that, then start afresh
    if (existing && existsSync(p.stopping)) {
      await stopSandbox(id);
      existing = await runc.state(id);
    }
    if (existing && (existing.status === 'running' || existing.status === 'created')) return;
    if (existing) await runc.delete(id);
    const uid = await opts.uidFor(spec.owner.id);
    await mkdir(p.runDir, { recursive: true, mode: 0o700 });
    // independent steps side by side: start latency is what people wait for
    const [key] = await Promise.all([hostKey(p.keys), ensureHome(p.image, p.mount, spec.storageBytes, uid, uid), rootfs(p.rootfs)]);
    const chosen = allocateGpus(id, spec);
    try {
      const app = appCommand(spec);
      const token = randomBytes(24).toString('hex');
      await writeFile(p.token, token, { mode: 0o600 });
      const devices: DeviceNode[] = chosen.length > 0 ? [...chosen.map((g) => g.device), ...controlDevices()] : [];
      const visible = chosen.map((g) => String(g.index)).join(',');
      const env: Record<string, string> = {
        HOME: '/home/jovyan',
        USER: 'jovyan',
        LOGNAME: 'jovyan',
        SHELL: '/bin/bash',
        PATH,
        LANG: 'C.UTF-8',
        TERM: 'xterm-256color',
        NB_PREFIX: spec.basePath.replace(/\/$/, ''),
        JUPYTER_TOKEN: token,
        ATRIUM_WORKSPACE: `${spec.team}/${spec.name}`,
        NVIDIA_VISIBLE_DEVICES: chosen.length > 0 ? chosen.map((g) => g.uuid).join(',') : 'void',
        ...(chosen.length > 0 ? { CUDA_VISIBLE_DEVICES: visible } : {}),
      };
      const { JUPYTER_TOKEN: _appToken, ...sessionEnv } = env;
      await writeOwnEtc(p.etc, { hostname: spec.name, uid, gid: uid, hostKey: key, authorizedKeys: spec.authorizedKeys, sessionEnv, agentForwarding: spec.agentForwarding });
      const config = ociConfig({
        hostname: spec.name,
        uid,
        gid: uid,
        rootfs: p.rootfs,
        baseEtc: await ensureBaseEtc(join(opts.dir, 'etc')),
        ownEtc: p.etc,
        homeDir: p.mount,
        agentPath: opts.agentPath,
        // the agent is PID 1: it reaps, and it is the one process here that holds the platform's descriptors
        args: ['/.atrium/agent', '--out-fd', '3', '--http-fd', '4', '--ssh-fd', '5', '--port', String(app.port), ...(app.args.length > 0 ? ['--', ...app.args] : [])],
        env,
        cpu: { requestMilli: spec.cpu.requestMilli, limitMilli: spec.cpu.limitMilli },
        memoryBytes: spec.memory.limitBytes,
        pids: opts.pids ?? 1024,
        tmpBytes: Math.min(spec.memory.limitBytes, 1 << 30),
        devices,
        cgroupsPath: `/atrium/${id}`,
        readOnly: [],
      });
      await writeFile(join(p.bundle, 'config.json'), JSON.stringify(config, null, 2), { mode: 0o600 });
      const meta: Meta = { owner: spec.owner.id, uid, gpus: chosen.map((g) => g.index), cpuRequestMilli: spec.cpu.requestMilli, memoryRequestBytes: spec.memory.requestBytes, environment: spec.environment.kind, basePath: spec.basePath };
      await writeFileAtomic(p.meta, JSON.stringify(meta));
      await rm(p.runcLog, { force: true });
      await launch(p, id);
    } catch (err) {
      release(id);
      throw err;
    }
  }

  function launch(p: ReturnType<typeof layout>, id: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn(opts.agentPath, ['launch', '--log', p.log, '--writer-pid', p.writerPid, '--log-max', String(LOG_MAX), '--http', p.http, '--ssh', p.ssh, '--', runc.binary, '--root', runc.root, '--log', p.runcLog, 'run', '-d', '--bundle', p.bundle, '--preserve-fds', '3', '--pid-file', join(p.runDir, 'pid'), id], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.on('error', reject);
      child.on('exit', async (code) => {
        if (code === 0) return resolve();
        const runcLog = (await readFile(p.runcLog, 'utf8').catch(() => '')).trim().split('\n').slice(-3).map((l) => {
          try {
            return (JSON.parse(l) as { msg?: string }).msg ?? l;
          } catch {
            return l;
          }
        });
        reject(new Error(`sandbox did not start: ${[stderr.trim(), ...runcLog].filter(Boolean).join('; ') || `runc exited with ${code}`}`));
      });
    });
  }

  async function observation(id: string, status: string): Promise<Observation> {
    const p = layout(opts.dir, id);
    // a stop began and has not been completed (its control plane may have died meanwhile): the sandbox is on its way out, or gone
    if (existsSync(p.stopping)) return { workspaceId: id, phase: 'stopping' };
    if (status === 'running' || status === 'created' || status === 'paused') return { workspaceId: id, phase: 'running' };
    await logWritten(p);
    const logTail = await tailLines(p.log, 20);
    return { workspaceId: id, phase: 'stopped', ...(logTail ? { logTail } : {}) };
  }

  async function cgroupRead(controller: string, id: string, file: string): Promise<string> {
    return readFile(`/sys/fs/cgroup/${controller}/atrium/${id}/${file}`, 'utf8').catch(() => '');
  }

  return {
    name: 'local',

    async ensureTenant() {
      // Local tenants need nothing ahead of their first workspace: uids are per user, directories per workspace.
    },

    start: (spec) => serialized(spec.id, () => startSandbox(spec)),
    stop: (id) => serialized(id, () => stopSandbox(id)),
    remove: (id, { purge }) =>
      serialized(id, async () => {
        await stopSandbox(id);
        const p = layout(opts.dir, id);
        await rm(p.runDir, { recursive: true, force: true });
        if (purge) {
          await rm(p.image, { force: true });
          await rm(p.keys, { recursive: true, force: true });
        }
      }),

    async inventory() {
      const list = await runc.list();
      const seen = await Promise.all(list.map((c) => observation(c.id, c.status)));
      // what a crash can leave without a container: a mounted home, a half-written bundle
      // (a stopped workspace keeps only its log and metadata, which are not leftovers)
      const known = new Set(list.map((c) => c.id));
      for (const sub of ['mnt', 'run']) {
        for (const id of await readdir(join(opts.dir, sub)).catch(() => [] as string[])) {
          const p = layout(opts.dir, id);
          if (!known.has(id) && (existsSync(p.mount) || existsSync(p.bundle) || existsSync(p.http))) {
            known.add(id);
            seen.push(await observation(id, 'stopped'));
          }
        }
      }
      return seen;
    },

    async *observe(signal) {
      const last = new Map<string, string>();
      for (const c of await runc.list()) last.set(c.id, c.status);
      while (!signal.aborted) {
        await sleep(1000, undefined, { signal }).catch(() => undefined);
        if (signal.aborted) return;
        const now = new Map((await runc.list()).map((c) => [c.id, c.status] as const));
        for (const [id, status] of now) {
          if (last.get(id) !== status) yield observation(id, status);
        }
        for (const id of last.keys()) if (!now.has(id)) yield { workspaceId: id, phase: 'stopped' as const };
        last.clear();
        for (const [id, status] of now) last.set(id, status);
      }
    },

    async endpoint(id, port) {
      const p = layout(opts.dir, id);
      const path = port === 'http' ? p.http : p.ssh;
      const st = await stat(path).catch(() => undefined);
      if (!st?.isSocket()) throw new Error(`workspace ${id} has no ${port} endpoint (not running)`);
      const connector: Connector = () =>
        new Promise((resolve, reject) => {
          const socket = connect({ path });
          socket.once('connect', () => resolve(socket));
          socket.once('error', reject);
        });
      // Jupyter is the app that takes the workspace's token; a custom app authenticates nobody itself
      const jupyter = port === 'http' && (await readJson<Meta>(p.meta).catch(() => undefined))?.environment === 'jupyter';
      const token = jupyter ? await readFile(p.token, 'utf8').catch(() => '') : '';
      const headers: Record<string, string> = token ? { authorization: `token ${token}` } : {};
      return { connect: connector, address: { socketPath: path }, headers };
    },

    async *logs(id, o: LogOptions = {}) {
      const path = layout(opts.dir, id).log;
      const initial = await tailLines(path, o.tail ?? 200);
      if (initial) yield `${initial}\n`;
      if (!o.follow) return;
      let offset = (await stat(path).catch(() => undefined))?.size ?? 0;
      while (!o.signal?.aborted) {
        await sleep(500, undefined, { signal: o.signal }).catch(() => undefined);
        const size = (await stat(path).catch(() => undefined))?.size ?? 0;
        if (size < offset) offset = 0; // the log writer rotated the log
        if (size > offset) {
          const fh = await open(path, 'r');
          const buf = Buffer.alloc(Math.min(size - offset, 1 << 20));
          await fh.read(buf, 0, buf.length, offset);
          await fh.close();
          offset += buf.length;
          yield buf.toString('utf8');
        }
      }
    },

    async activity(id): Promise<Activity> {
      const p = layout(opts.dir, id);
      const usage = Number((await cgroupRead('cpuacct', id, 'cpuacct.usage')).trim() || 0);
      let sshSessions = 0;
      for (const pid of (await cgroupRead('pids', id, 'cgroup.procs')).split('\n').filter(Boolean)) {
        const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
        if (comm.trim() === 'sshd') sshSessions++;
      }
      let busyKernels = 0;
      let appLastActivity: number | null = null;
      const meta = await readJson<Meta>(p.meta);
      if (meta?.environment === 'jupyter') {
        const token = await readFile(p.token, 'utf8').catch(() => '');
        const j = await jupyterActivity(p.http, meta.basePath, token).catch(() => undefined);
        if (j) {
          busyKernels = j.busy;
          appLastActivity = j.last;
        }
      }
      return { cpuSeconds: usage / 1e9, gpuUtilization: null, sshSessions, busyKernels, appLastActivity };
    },

    async notify(id, message) {
      // a line on every terminal open in the sandbox, written by its own user
      const meta = await readJson<Meta>(layout(opts.dir, id).meta);
      if (!meta) return;
      const script = 'for t in /dev/pts/[0-9]*; do [ -w "$t" ] && printf "\\r\\n%s\\r\\n" "$1" > "$t"; done; true';
      await runWithoutOutput(runc.binary, ['--root', runc.root, 'exec', '--user', `${meta.uid}:${meta.uid}`, id, '/bin/sh', '-c', script, 'atrium-notify', `[atrium] ${message}`], { timeoutMs: 10_000 });
    },

    async capacity(): Promise<Capacity> {
      let cpuMilli = 0;
      let memoryBytes = 0;
      const running = new Set((await runc.list()).filter((c) => c.status !== 'stopped').map((c) => c.id));
      for (const id of running) {
        const meta = await readJson<Meta>(layout(opts.dir, id).meta);
        cpuMilli += meta?.cpuRequestMilli ?? 0;
        memoryBytes += meta?.memoryRequestBytes ?? 0;
      }
      return {
        cpuMilli: Math.max(0, cpus().length * 1000 - opts.reserve.cpuMilli),
        // whole MiB, so refusals read "3500Mi of 23Gi left" rather than in bytes
        memoryBytes: Math.floor(Math.max(0, totalmem() - opts.reserve.memoryBytes) / 2 ** 20) * 2 ** 20,
        gpus: gpus.map((g) => ({ index: g.index, type: g.type, uuid: g.uuid, heldBy: held.get(g.index) ?? null })),
        allocated: { cpuMilli, memoryBytes },
        tiers: { standard: true, sandboxed: 'this machine cannot run KVM guests (no hardware virtualisation), so the sandboxed tier is not available on the local runtime' },
        publicEgress: 'the local runtime gives sandboxes loopback only; public egress is not available here yet',
      };
    },
  };
}


import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { egressOf, needsEgress } from '../../domain/index.js';
import { WORKLOAD_TOKEN_DIR, type WorkspaceSpec } from '../types.js';
import { ociConfig, type DeviceNode } from './bundle.js';
import { ensureBaseEtc, writeOwnEtc } from './etc.js';
import { writeFileAtomic } from './files.js';
import { controlDevices, type GpuAllocator } from './gpus.js';
import { CommandFailed, run } from './exec.js';
import { ensureHome, unmountHome } from './home.js';
import { layout, readJson, type Layout, type Meta } from './layout.js';
import type { Runc } from './runc.js';
import type { Egress } from './egress.js';
import { hasExecutable, type ImageRoot, type LocalImages } from './images.js';
import type { LocalVolumes } from './volumes.js';

const JUPYTER_PORT = 8888;
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const LOG_MAX = 1 << 20;
/** runc run -d returns once the sandbox's PID 1 runs: seconds at most, unless the machine is in trouble */
const LAUNCH_TIMEOUT_MS = 120_000;

/** What starting and stopping sandboxes needs. */
export interface LifecycleDeps {
  /** the runtime's root-only directory */
  dir: string;
  /** the compiled atrium-agent */
  agentPath: string;
  /** the host uid of a user: distinct per user, stable across restarts */
  uidFor(userId: string): Promise<number>;
  /** the pids limit of each sandbox */
  pids: number;
  /** how long a sandbox has between SIGTERM and SIGKILL */
  stopGraceMs: number;
  runc: Runc;
  gpus: GpuAllocator;
  egress: Egress;
  images: LocalImages;
  volumes: LocalVolumes;
}

/** Starts, stops and removes sandboxes; the caller serializes operations per workspace. */
export interface Lifecycle {
  /** Makes the workspace's sandbox run as `spec` says (nothing when it runs already); `progress` hears slow steps (an image's first use). */
  start(spec: WorkspaceSpec, progress?: (message: string) => void): Promise<void>;
  /** Stops the sandbox (SIGTERM, then SIGKILL after the grace) and frees what it held, keeping its home, log and metadata. */
  stop(id: string): Promise<void>;
  /** Stops the sandbox and removes its directory; its home image too with `purge`. */
  remove(id: string, purge: boolean): Promise<void>;
}

/** A fresh, empty root filesystem: mount points for what the bundle mounts, and the usual links into /usr. */
async function rootfs(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  for (const d of ['usr', 'etc', 'home/jovyan', 'tmp', 'proc', 'dev', 'sys', '.atrium', 'run', 'var/tmp', 'root', WORKLOAD_TOKEN_DIR.slice(1)]) {
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

/**
 * Writes a workspace's workload identity token into `dir` (bound read-only
 * at /var/run/secrets/atrium): readable by the workspace's user through its
 * group, replaced by a rename, so a reader sees the old token or the new one.
 */
export async function writeWorkloadToken(dir: string, uid: number, token: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o750 });
  await chown(dir, 0, uid);
  await chmod(dir, 0o750);
  const partial = join(dir, `.token.${randomBytes(6).toString('hex')}`);
  await writeFile(partial, token, { mode: 0o440 });
  await chown(partial, 0, uid);
  await rename(partial, join(dir, 'token'));
}

/** The app the agent runs, and the port it listens on inside (0: none). */
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

/**
 * Builds the sandbox lifecycle over `deps`: bundles, homes, GPUs
 * held and freed, and runc run through the agent's launcher.
 */
export function createLifecycle(deps: LifecycleDeps): Lifecycle {
  const { dir, runc } = deps;

  /** Sandboxes other than `except` that exist (running or being made) and bind the volume. */
  async function volumeUsers(volumeId: string, except: string): Promise<number> {
    let n = 0;
    for (const c of await runc.list()) {
      if (c.id === except || c.status === 'stopped') continue;
      if ((await readJson<Meta>(layout(dir, c.id).meta))?.volumes?.includes(volumeId)) n++;
    }
    return n;
  }

  async function stop(id: string): Promise<void> {
    const p = layout(dir, id);
    let state = await runc.state(id);
    if (state && state.status !== 'stopped') {
      await writeFile(p.stopping, '').catch(() => undefined);
      await runc.kill(id, 'TERM');
      const deadline = Date.now() + deps.stopGraceMs;
      while (Date.now() < deadline && (state = await runc.state(id)) && state.status !== 'stopped') await sleep(100);
      if (state && state.status !== 'stopped') {
        await runc.kill(id, 'KILL');
        for (let i = 0; i < 50 && (state = await runc.state(id)) && state.status !== 'stopped'; i++) await sleep(100);
      }
    }
    if (state) await runc.delete(id);
    await unmountHome(p.mount);
    // a volume no other sandbox binds any more leaves the host too (and grows, if it grew, at its next use)
    for (const v of (await readJson<Meta>(p.meta))?.volumes ?? []) await deps.volumes.release(v, () => volumeUsers(v, id));
    for (const f of [p.http, p.ssh, p.token]) await rm(f, { force: true });
    await rm(p.bundle, { recursive: true, force: true });
    await rm(p.etc, { recursive: true, force: true });
    await rm(p.secrets, { recursive: true, force: true });
    deps.gpus.release(id);
    await deps.egress.detach(id);
    const meta = await readJson<Meta>(p.meta);
    if (meta) await writeFileAtomic(p.meta, JSON.stringify({ ...meta, gpus: [] }));
    // an image's root is kept for the grace period from its last use
    if (meta?.image) await deps.images.touch(meta.image.digest);
    await rm(p.stopping, { force: true });
  }

  /**
   * The image's root for `spec`, checked for what the workspace runs:
   * `jupyter-notebook` (or a custom app's command) on the image's PATH, and
   * the sshd every workspace's SSH access starts.
   */
  async function imageFor(spec: WorkspaceSpec, progress: (message: string) => void): Promise<ImageRoot> {
    const img = await deps.images.root(spec.image!, progress);
    const path = img.env.find((e) => e.startsWith('PATH='))?.slice(5) || PATH;
    const needs: Array<[string, string]> = [['/usr/sbin/sshd', 'SSH access runs it']];
    if (spec.environment.kind === 'jupyter') needs.unshift(['jupyter-notebook', 'the jupyter environment runs it']);
    const command = spec.environment.kind === 'custom' ? spec.environment.command?.[0] : undefined;
    if (command) needs.unshift([command, "the profile's custom app runs it"]);
    for (const [what, why] of needs) {
      if (await hasExecutable(img.rootfs, what, path)) continue;
      deps.images.unpin(img.digest);
      throw new Error(`image ${img.name} has no ${what}${what.includes('/') ? '' : ' on its PATH'} (${why})`);
    }
    return img;
  }

  async function start(spec: WorkspaceSpec, progress: (message: string) => void = () => undefined): Promise<void> {
    const id = spec.id;
    const p = layout(dir, id);
    let existing = await runc.state(id);
    // a sandbox a crashed control plane had begun to stop is on its way out: finish that, then start afresh
    if (existing && existsSync(p.stopping)) {
      await stop(id);
      existing = await runc.state(id);
    }
    // running already: kept, unless it lost its link (a sandbox an earlier control plane's start made late, after a sweep)
    if (existing && (existing.status === 'running' || existing.status === 'created')) {
      if (!needsEgress(spec.egress) || deps.egress.attached(id)) return;
      await stop(id);
      existing = await runc.state(id);
    }
    if (existing) await runc.delete(id);
    const uid = await deps.uidFor(spec.owner.id);
    await mkdir(p.runDir, { recursive: true, mode: 0o700 });
    // independent steps side by side: start latency is what people wait for
    const [, img] = await Promise.all([ensureHome(p.image, p.mount, spec.storageBytes, uid, uid), spec.image ? mkdir(p.bundle, { recursive: true, mode: 0o700 }).then(() => imageFor(spec, progress)) : rootfs(p.rootfs).then(() => undefined)]);
    const chosen = deps.gpus.allocate(id, spec);
    /** volumes this start holds mounted until its sandbox binds them */
    const held: string[] = [];
    try {
      if (spec.volumes.length > 0 && spec.teamGid === undefined) throw new Error('workspace mounts volumes but has no team group');
      const volumes = await Promise.all(spec.volumes.map(async (v) => {
        const source = await deps.volumes.ensure(v, spec.teamGid!);
        held.push(v.id);
        return { source, destination: v.path, readOnly: v.readOnly };
      }));
      // egress: its own network namespace and link, at the address it had before
      const rule = egressOf(spec.egress);
      const link = needsEgress(spec.egress) ? await deps.egress.attach(id, rule, (await readJson<Meta>(p.meta))?.egress?.slot) : undefined;
      const app = appCommand(spec);
      const token = randomBytes(24).toString('hex');
      await writeFile(p.token, token, { mode: 0o600 });
      await rm(p.secrets, { recursive: true, force: true });
      if (spec.workloadToken) await writeWorkloadToken(p.secrets, uid, spec.workloadToken);
      const devices: DeviceNode[] = chosen.length > 0 ? [...chosen.map((g) => g.device), ...controlDevices()] : [];
      const visible = chosen.map((g) => String(g.index)).join(',');
      // the image's own variables first (its PATH, LANG, tool settings); the platform's win, PATH aside
      const imageEnv: Record<string, string> = Object.fromEntries((img?.env ?? []).map((e): [string, string] => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]).filter(([k]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k)));
      const env: Record<string, string> = {
        ...imageEnv,
        HOME: '/home/jovyan',
        USER: 'jovyan',
        LOGNAME: 'jovyan',
        SHELL: '/bin/bash',
        PATH: imageEnv['PATH'] || PATH,
        LANG: 'C.UTF-8',
        TERM: 'xterm-256color',
        NB_PREFIX: spec.basePath.replace(/\/$/, ''),
        JUPYTER_TOKEN: token,
        ATRIUM_WORKSPACE: `${spec.team}/${spec.name}`,
        ...(spec.workloadToken ? { ATRIUM_TOKEN_FILE: `${WORKLOAD_TOKEN_DIR}/token` } : {}),
        NVIDIA_VISIBLE_DEVICES: chosen.length > 0 ? chosen.map((g) => g.uuid).join(',') : 'void',
        ...(chosen.length > 0 ? { CUDA_VISIBLE_DEVICES: visible } : {}),
      };
      const { JUPYTER_TOKEN: _appToken, ...sessionEnv } = env;
      await writeOwnEtc(p.etc, { hostname: spec.name, uid, gid: uid, hostKey: spec.ssh.hostKey, authorizedKeys: spec.ssh.authorizedKeys, sessionEnv, agentForwarding: spec.agentForwarding, resolver: link && deps.egress.resolver, teamGid: spec.teamGid });
      const config = ociConfig({
        hostname: spec.name,
        uid,
        gid: uid,
        rootfs: img ? img.rootfs : p.rootfs,
        baseEtc: img ? undefined : await ensureBaseEtc(join(dir, 'etc')),
        ownEtc: p.etc,
        homeDir: p.mount,
        agentPath: deps.agentPath,
        // the agent is PID 1: it reaps, and it is the one process here that holds the platform's descriptors
        args: ['/.atrium/agent', '--out-fd', '3', '--http-fd', '4', '--ssh-fd', '5', '--port', String(app.port), ...(app.args.length > 0 ? ['--', ...app.args] : [])],
        env,
        cpu: { requestMilli: spec.cpu.requestMilli, limitMilli: spec.cpu.limitMilli },
        memoryBytes: spec.memory.limitBytes,
        pids: deps.pids,
        tmpBytes: Math.min(spec.memory.limitBytes, 1 << 30),
        devices,
        cgroupsPath: `/atrium/${id}`,
        readOnly: spec.workloadToken ? [{ source: p.secrets, destination: WORKLOAD_TOKEN_DIR }] : [],
        netns: link?.netns,
        volumes,
        additionalGids: spec.teamGid === undefined ? [] : [spec.teamGid],
      });
      await writeFile(join(p.bundle, 'config.json'), JSON.stringify(config, null, 2), { mode: 0o600 });
      const meta: Meta = {
        owner: spec.owner.id, uid, gpus: chosen.map((g) => g.index), cpuRequestMilli: spec.cpu.requestMilli, memoryRequestBytes: spec.memory.requestBytes,
        environment: spec.environment.kind, basePath: spec.basePath, ...(link ? { egress: { slot: link.slot, public: rule.public, allow: rule.allow } } : {}),
        ...(img ? { image: { name: img.name, digest: img.digest } } : {}),
        ...(spec.volumes.length > 0 ? { volumes: spec.volumes.map((v) => v.id) } : {}),
      };
      await writeFileAtomic(p.meta, JSON.stringify(meta));
      await rm(p.runcLog, { force: true });
      await launch(p, id);
    } catch (err) {
      deps.gpus.release(id);
      await deps.egress.detach(id).catch(() => undefined);
      for (const v of held.splice(0)) {
        deps.volumes.unpin(v);
        await deps.volumes.release(v, () => volumeUsers(v, id)).catch(() => undefined);
      }
      throw err;
    } finally {
      if (img) deps.images.unpin(img.digest);
      for (const v of held) deps.volumes.unpin(v);
    }
  }

  /** Runs the bundle detached, through the agent's launcher (which binds the sockets and writes the log); rejects with runc's last words when it does not start. */
  async function launch(p: Layout, id: string): Promise<void> {
    const args = ['launch', '--log', p.log, '--writer-pid', p.writerPid, '--log-max', String(LOG_MAX), '--http', p.http, '--ssh', p.ssh, '--', runc.binary, '--root', runc.root, '--log', p.runcLog, 'run', '-d', '--bundle', p.bundle, '--preserve-fds', '3', '--pid-file', join(p.runDir, 'pid'), id];
    try {
      await run(deps.agentPath, args, { timeoutMs: LAUNCH_TIMEOUT_MS });
    } catch (err) {
      const stderr = err instanceof CommandFailed ? err.stderr : (err as Error).message;
      const runcLog = (await readFile(p.runcLog, 'utf8').catch(() => '')).trim().split('\n').slice(-3).map((l) => {
        try {
          return (JSON.parse(l) as { msg?: string }).msg ?? l;
        } catch {
          return l;
        }
      });
      throw new Error(`sandbox did not start: ${[stderr.trim(), ...runcLog].filter(Boolean).join('; ') || 'runc failed'}`, { cause: err });
    }
  }

  async function remove(id: string, purge: boolean): Promise<void> {
    await stop(id);
    const p = layout(dir, id);
    await rm(p.runDir, { recursive: true, force: true });
    if (purge) {
      await rm(p.image, { force: true });
      // host keys earlier versions kept per workspace
      await rm(p.keys, { recursive: true, force: true });
    }
  }

  return { start, stop, remove };
}

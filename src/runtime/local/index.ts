import { chmod, mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Capacity, Connector, Runtime } from '../types.js';
import { createActivity } from './activity.js';
import { ensureBaseEtc, rewriteAuthorizedKeys } from './etc.js';
import { closeCommandHelper, runWithoutOutput, useCommandHelper } from './exec.js';
import { createGpuAllocator, discoverGpus, type GpuInventoryEntry } from './gpus.js';
import { layout, readJson, type Meta } from './layout.js';
import { createLifecycle, writeWorkloadToken } from './lifecycle.js';
import { createObserver } from './observation.js';
import { createEgress, type EgressConfig } from './egress.js';
import { createImages } from './images.js';
import { createRunc } from './runc.js';
import { createVolumes } from './volumes.js';

export type { GpuInventoryEntry } from './gpus.js';

export interface LocalRuntimeOptions {
  /** root-only directory for images, sandboxes and keys, e.g. /var/lib/atrium/local */
  dir: string;
  /** the compiled atrium-agent */
  agentPath: string;
  /** the host uid of a user: distinct per user, stable across restarts */
  uidFor: (userId: string) => Promise<number>;
  /** CPU and memory kept for the system */
  reserve: { cpuMilli: number; memoryBytes: number };
  gpuInventory?: GpuInventoryEntry[];
  /** processes per workspace (runtime.pids) */
  pids: number;
  /** SIGTERM, then SIGKILL after this (runtime.stopGrace) */
  stopGraceMs: number;
  runcBinary?: string;
  /** public egress (runtime.egress) */
  egress: EgressConfig;
  /** how long an unpacked image root no sandbox uses is kept (runtime.imageGrace) */
  imageGraceMs: number;
  log: { warn(obj: unknown, msg?: string): void; info?(obj: unknown, msg?: string): void };
}

/** How often unused image roots are looked for. */
const IMAGE_GC_EVERY_MS = 10 * 60_000;

/**
 * The local runtime: each workspace is a runc sandbox on this machine
 * (design §6), reached only through Unix sockets that root binds in a
 * root-only directory and hands to the sandbox's agent.
 *
 * Prepares the runtime's directory, finds this machine's GPUs and which
 * sandboxes hold them, and wires the sandbox lifecycle, observation and
 * activity over them.
 */
/** How long runc commands a dead control plane left going are waited for. */
const LEFTOVER_WAIT_MS = 60_000;

/**
 * Waits until no runc command of this runtime is under way: a control plane
 * killed mid-step leaves its `runc run`, `runc kill` or `runc delete` going,
 * and what they do lands later. Adopting sandboxes before that would keep a
 * link for a sandbox about to go, sweep one from a sandbox about to run, or
 * let a late `kill` stop a sandbox started again meanwhile.
 */
async function leftoversSettled(runcRoot: string, log: { info?(obj: unknown, msg?: string): void; warn(obj: unknown, msg?: string): void }): Promise<void> {
  const running = async (): Promise<number[]> => {
    const pids: number[] = [];
    for (const pid of await readdir('/proc').catch(() => [] as string[])) {
      if (!/^[0-9]+$/.test(pid)) continue;
      const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
      // runc itself (`runc --root <root> …`); the agent's launcher names it only after `--`, and a sandbox's `runc init` names no root
      if (argv[1] === '--root' && argv[2] === runcRoot) pids.push(Number(pid));
    }
    return pids;
  };
  const deadline = Date.now() + LEFTOVER_WAIT_MS;
  let pids = await running();
  if (pids.length > 0) log.info?.({ pids }, 'waiting for runc commands an earlier control plane left under way');
  while (pids.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    pids = await running();
  }
  if (pids.length > 0) log.warn({ pids }, 'runc commands an earlier control plane left are still under way; going on without them');
}

export async function createLocalRuntime(opts: LocalRuntimeOptions): Promise<Runtime> {
  for (const sub of ['', 'run', 'homes', 'mnt', 'keys', 'runc', 'etc']) await mkdir(join(opts.dir, sub), { recursive: true, mode: 0o700 });
  await chmod(opts.dir, 0o700);
  // runc, mkfs, mount and the rest run through the agent's small helper process, not by forking the control plane
  useCommandHelper(opts.agentPath);
  const runc = createRunc(join(opts.dir, 'runc'), opts.runcBinary);
  // built now, so the first start does not pay for copying the host's /etc
  await ensureBaseEtc(join(opts.dir, 'etc'));
  const gpus = createGpuAllocator(await discoverGpus(opts.gpuInventory));
  const locks = new Map<string, Promise<unknown>>();

  const egress = await createEgress({ dir: opts.dir, config: opts.egress, log: opts.log });
  // a control plane killed mid-step leaves its runc commands going: what they do must have landed before the sweep below decides
  await leftoversSettled(runc.root, opts.log);
  const sandboxes = new Set((await runc.list()).map((c) => c.id));
  const links = new Map<string, { slot: number; public: boolean; allow: string[] }>();

  // Rebuild which GPUs are held and which links exist from the sandboxes that exist, so a restart of the control plane changes nothing.
  for (const id of await readdir(join(opts.dir, 'run')).catch(() => [] as string[])) {
    const p = layout(opts.dir, id);
    const meta = await readJson<Meta>(p.meta);
    for (const g of meta?.gpus ?? []) gpus.hold(g, id);
    // a sandbox that is gone has no use for its link; one that stopped meanwhile loses it when the reconciler stops it
    if (meta?.egress && sandboxes.has(id)) links.set(id, { slot: meta.egress.slot, public: meta.egress.public ?? true, allow: meta.egress.allow ?? [] });
    // what a crash left of a replacement being written
    for (const f of await readdir(p.runDir).catch(() => [] as string[])) if (f.endsWith('.tmp')) await rm(join(p.runDir, f), { force: true });
  }

  // the rules and links are exactly those of the sandboxes that exist: what a crash left half-made goes
  await egress.adopt(links);

  /** The image roots sandboxes were made from, running or stopped: workspace ids by digest. */
  async function imagesInUse(): Promise<Map<string, string[]>> {
    const used = new Map<string, string[]>();
    for (const id of await readdir(join(opts.dir, 'run')).catch(() => [] as string[])) {
      const digest = (await readJson<Meta>(layout(opts.dir, id).meta))?.image?.digest;
      if (digest) used.set(digest, [...(used.get(digest) ?? []), id]);
    }
    return used;
  }
  const images = await createImages({ dir: opts.dir, graceMs: opts.imageGraceMs, inUse: imagesInUse, log: opts.log });
  const collectImages = async () => {
    const removed = await images.collect(new Set((await imagesInUse()).keys()));
    if (removed.length > 0) opts.log.info?.({ roots: removed }, 'removed image roots no workspace used within runtime.imageGrace');
  };
  const gcTimer = setInterval(() => void collectImages().catch((err: unknown) => opts.log.warn({ err }, 'image root collection failed')), Math.min(IMAGE_GC_EVERY_MS, Math.max(10_000, opts.imageGraceMs)));
  gcTimer.unref();

  const volumes = createVolumes(opts.dir);
  const lifecycle = createLifecycle({ dir: opts.dir, agentPath: opts.agentPath, uidFor: opts.uidFor, pids: opts.pids, stopGraceMs: opts.stopGraceMs, runc, gpus, egress, images, volumes });
  const observer = createObserver({ dir: opts.dir, runc });
  const activity = createActivity({ dir: opts.dir });

  /** One operation at a time per workspace. */
  function serialized<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = locks.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    locks.set(id, next.catch(() => undefined));
    return next;
  }

  return {
    name: 'local',

    async ensureTenant() {
      // Local tenants need nothing ahead of their first workspace: uids are per user, directories per workspace.
    },

    start: (spec, o) => serialized(spec.id, () => lifecycle.start(spec, o?.progress && ((m) => o.progress?.(m)))),
    stop: (id) => serialized(id, () => lifecycle.stop(id)),
    remove: (id, { purge }) => serialized(id, () => lifecycle.remove(id, purge)),

    inventory: () => observer.inventory(),
    observe: (signal) => observer.observe(signal),

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

    // serialized with start and stop: a stop removes the sandbox's /etc, a start writes the list from its spec
    authorize: (id, lines) => serialized(id, () => rewriteAuthorizedKeys(layout(opts.dir, id).etc, lines)),

    // serialized with start and stop too: a token is never written after the stop that removed the directory
    workloadToken: (id, token) =>
      serialized(id, async () => {
        const p = layout(opts.dir, id);
        const state = await runc.state(id);
        const meta = await readJson<Meta>(p.meta);
        if (!state || state.status !== 'running' || !meta || !existsSync(p.secrets)) return;
        await writeWorkloadToken(p.secrets, meta.uid, token);
      }),

    logs: (id, o) => observer.logs(id, o),
    activity,

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
        gpus: gpus.list(),
        allocated: { cpuMilli, memoryBytes },
        tiers: { standard: true, sandboxed: 'this machine cannot run KVM guests (no hardware virtualisation), so the sandboxed tier is not available on the local runtime' },
        publicEgress: egress.available,
      };
    },

    images,

    syncVolumes: (keep) => volumes.sync(keep),

    async close() {
      clearInterval(gcTimer);
      await egress.close();
      closeCommandHelper();
    },
  };
}

import { existsSync } from 'node:fs';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LogOptions, Observation } from '../types.js';
import { layout } from './layout.js';
import type { Runc } from './runc.js';

/** What watching sandboxes needs. */
export interface ObservationDeps {
  /** the runtime's root-only directory */
  dir: string;
  runc: Runc;
}

/** What the runtime sees of its sandboxes: their phases, and their apps' output. */
export interface Observer {
  /** Every sandbox there is, and what a crash left of one without a container. */
  inventory(): Promise<Observation[]>;
  /** Phase changes, polled every second, until `signal` aborts. */
  observe(signal: AbortSignal): AsyncIterable<Observation>;
  /** The app's log: its last lines, then (with `follow`) what it writes next. */
  logs(id: string, o?: LogOptions): AsyncIterable<string>;
}

/**
 * Reads one file of a sandbox's cgroup (v1 hierarchy).
 *
 * @returns its content, or '' when the sandbox (or the file) is not there
 */
export async function cgroupRead(controller: string, id: string, file: string): Promise<string> {
  return readFile(`/sys/fs/cgroup/${controller}/atrium/${id}/${file}`, 'utf8').catch(() => '');
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

/** The last `lines` non-empty lines of a file (from its last 64 KiB), or '' when it cannot be read. */
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

/** Builds the observer of the sandboxes under `deps.dir`, as runc lists them. */
export function createObserver(deps: ObservationDeps): Observer {
  const { dir, runc } = deps;

  /** The phase of one sandbox, given runc's status of it; a stopped one's last log lines with it. */
  async function observation(id: string, status: string): Promise<Observation> {
    const p = layout(dir, id);
    // a stop began and has not been completed (its control plane may have died meanwhile): the sandbox is on its way out, or gone
    if (existsSync(p.stopping)) return { workspaceId: id, phase: 'stopping' };
    if (status === 'running' || status === 'created' || status === 'paused') return { workspaceId: id, phase: 'running' };
    await logWritten(p);
    const logTail = await tailLines(p.log, 20);
    return { workspaceId: id, phase: 'stopped', ...(logTail ? { logTail } : {}) };
  }

  return {
    async inventory() {
      const list = await runc.list();
      const seen = await Promise.all(list.map((c) => observation(c.id, c.status)));
      // what a crash can leave without a container: a mounted home, a half-written bundle
      // (a stopped workspace keeps only its log and metadata, which are not leftovers)
      const known = new Set(list.map((c) => c.id));
      for (const sub of ['mnt', 'run']) {
        for (const id of await readdir(join(dir, sub)).catch(() => [] as string[])) {
          const p = layout(dir, id);
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

    async *logs(id, o: LogOptions = {}) {
      const path = layout(dir, id).log;
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
  };
}

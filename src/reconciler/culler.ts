import { formatDuration } from '../domain/index.js';
import type { Runtime } from '../runtime/index.js';
import type { Store, Workspace } from '../store/index.js';

const SWEEP_PAGE = 500;

export interface CullerOptions {
  store: Store;
  runtime: Runtime;
  log: { error(obj: unknown, msg?: string): void };
  /** how often running workspaces are looked at */
  everyMs: number;
  /** how long before culling the people in a workspace are warned (at most half its timeout) */
  warnBeforeMs: number;
  /** CPU use (in CPUs) above which a workspace counts as active: an unattended run is never idle */
  cpuActive: number;
}

/**
 * Stops workspaces idle for longer than their profile's timeout. Activity
 * (design §5) is proxy traffic and open WebSockets (recorded through
 * `touch`), SSH sessions, busy Jupyter kernels and Jupyter's own last
 * activity, and CPU or GPU use above a threshold. Before it acts, it says so
 * in the event stream and on the workspace's open terminals.
 */
export function createCuller(opts: CullerOptions) {
  const { store, runtime } = opts;
  const states = store.workspaceStates;
  const lastCpu = new Map<string, { at: number; cpu: number }>();
  /** when each workspace was warned: the warning's own output on its terminals is not activity */
  const warned = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  let sweeping: Promise<void> | undefined;

  /** Looks at one running workspace as the sweep read it; re-reads it before acting, since proxy activity may have moved meanwhile. */
  async function check(now: number, seen: Workspace): Promise<void> {
    const timeout = seen.spec.idleTimeoutSeconds;
    if (seen.desired !== 'running' || !timeout) return;
    const act = await runtime.activity(seen.id);
    const prev = lastCpu.get(seen.id);
    lastCpu.set(seen.id, { at: now, cpu: act.cpuSeconds });
    const cpuRate = prev && now > prev.at ? (act.cpuSeconds - prev.cpu) / ((now - prev.at) / 1000) : 0;
    const active = act.sshSessions > 0 || act.busyKernels > 0 || cpuRate > opts.cpuActive || (act.gpuUtilization ?? 0) > 0.05;
    const warnedAt = warned.get(seen.id);
    const app = act.appLastActivity ?? 0;
    const appIsOurWarning = warnedAt !== undefined && app >= warnedAt - 1000 && app <= warnedAt + 10_000;
    const lastOf = (ws: Workspace) => (active ? now : Math.max(ws.lastActivityAt ?? 0, ws.startedAt ?? 0, appIsOurWarning ? 0 : app));
    const timeoutMs = timeout * 1000;
    const warnAt = timeoutMs - Math.min(opts.warnBeforeMs, timeoutMs / 2);
    let ws = seen;
    let last = lastOf(ws);
    if (now - last >= warnAt) {
      const fresh = await states.get(seen.id);
      if (!fresh || fresh.phase !== 'running' || fresh.desired !== 'running') return;
      ws = fresh;
      last = lastOf(ws);
    }
    if (last > (ws.lastActivityAt ?? 0)) await states.touch(ws.id, last);
    const idleMs = now - last;
    if (idleMs >= timeoutMs) {
      warned.delete(ws.id);
      lastCpu.delete(ws.id);
      await store.workspaces.stop(ws, `stop requested: no activity for ${formatDuration(timeout)} (the profile's idle timeout)`);
    } else if (idleMs >= warnAt) {
      if (!warned.has(ws.id)) {
        warned.set(ws.id, now);
        const left = formatDuration(Math.max(1, Math.round((timeoutMs - idleMs) / 1000)));
        const message = `no activity for ${formatDuration(Math.round(idleMs / 1000))}: this workspace stops in about ${left} unless it is used`;
        await states.note(ws.id, 'idle-warning', message, { idleSeconds: Math.round(idleMs / 1000), stopsInSeconds: Math.round((timeoutMs - idleMs) / 1000) });
        await runtime.notify(ws.id, message);
      }
    } else {
      warned.delete(ws.id);
    }
  }

  /** Every running workspace, a page at a time: with thousands running, memory stays that of one page. */
  async function sweep(): Promise<void> {
    const now = Date.now();
    let afterId: string | undefined;
    for (;;) {
      const page = await states.running({ limit: SWEEP_PAGE, ...(afterId === undefined ? {} : { afterId }) });
      for (const ws of page) {
        await check(now, ws).catch((err: unknown) => opts.log.error({ err, workspace: ws.id }, 'idle check failed'));
      }
      if (page.length < SWEEP_PAGE) return;
      afterId = page.at(-1)!.id;
    }
  }

  return {
    start(): void {
      timer = setInterval(() => {
        sweeping ??= sweep().finally(() => (sweeping = undefined));
      }, opts.everyMs);
      timer.unref();
    },
    async stop(): Promise<void> {
      if (timer) clearInterval(timer);
      await sweeping;
    },
  };
}

export type Culler = ReturnType<typeof createCuller>;

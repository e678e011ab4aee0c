import type { WorkspaceStates } from '../store/index.js';

/**
 * Proxy activity for the idle culler (design §5): the last request and the
 * open WebSockets of each workspace, kept in memory and written to the
 * workspace's last-activity time once per flush, never once per request.
 * A workspace with a WebSocket open counts as active at every flush.
 */
export function createActivity(states: Pick<WorkspaceStates, 'touch'>, opts: { flushMs: number; now?: () => number; onError: (err: unknown) => void }) {
  const now = opts.now ?? Date.now;
  const last = new Map<string, number>();
  const open = new Map<string, number>();
  let flushing: Promise<void> | undefined;

  async function flush(): Promise<void> {
    const at = now();
    const due = new Map(last);
    last.clear();
    for (const id of open.keys()) due.set(id, at);
    for (const [id, t] of due) {
      try {
        await states.touch(id, t);
      } catch (err) {
        opts.onError(err);
      }
    }
  }

  const timer = setInterval(() => {
    flushing ??= flush().finally(() => (flushing = undefined));
  }, opts.flushMs);
  timer.unref();

  return {
    request(workspaceId: string): void {
      last.set(workspaceId, now());
    },
    socketOpened(workspaceId: string): void {
      open.set(workspaceId, (open.get(workspaceId) ?? 0) + 1);
      last.set(workspaceId, now());
    },
    socketClosed(workspaceId: string): void {
      const n = (open.get(workspaceId) ?? 1) - 1;
      if (n <= 0) open.delete(workspaceId);
      else open.set(workspaceId, n);
      last.set(workspaceId, now());
    },
    /** Writes what is pending now (tests, shutdown). */
    async flush(): Promise<void> {
      await flushing;
      await flush();
    },
    async close(): Promise<void> {
      clearInterval(timer);
      await this.flush();
    },
  };
}

export type Activity = ReturnType<typeof createActivity>;

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './exec.js';

export interface ContainerState {
  id: string;
  pid: number;
  /** `created`, `running`, `paused` or `stopped`; other runc versions may add states */
  status: string;
}

/** runc with its own state directory, so `runc list` shows Atrium's sandboxes only. */
export function createRunc(root: string, binary = 'runc') {
  const runc = (args: string[], timeoutMs?: number) => run(binary, ['--root', root, ...args], timeoutMs === undefined ? {} : { timeoutMs });
  return {
    binary,
    root,
    async list(): Promise<ContainerState[]> {
      const { stdout } = await runc(['list', '--format', 'json']);
      const parsed = JSON.parse(stdout || 'null') as Array<{ id: string; pid: number; status: string }> | null;
      return (parsed ?? []).map((c) => ({ id: c.id, pid: c.pid, status: c.status }));
    },
    async state(id: string): Promise<ContainerState | undefined> {
      // runc keeps each container's state in a directory of that name: without it there is no container, and no process to ask
      if (!existsSync(join(root, id))) return undefined;
      try {
        const { stdout } = await runc(['state', id]);
        const s = JSON.parse(stdout) as { id: string; pid: number; status: string };
        return { id: s.id, pid: s.pid, status: s.status };
      } catch {
        return undefined;
      }
    },
    async kill(id: string, signal: 'TERM' | 'KILL'): Promise<void> {
      await runc(['kill', '--all', id, signal]).catch(() => undefined);
    },
    async delete(id: string): Promise<void> {
      await runc(['delete', '--force', id]).catch(() => undefined);
    },
  };
}

export type Runc = ReturnType<typeof createRunc>;

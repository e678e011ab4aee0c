import { request as httpRequest } from 'node:http';
import { readFile } from 'node:fs/promises';
import type { Activity } from '../types.js';
import { layout, readJson, type Meta } from './layout.js';
import { cgroupRead } from './observation.js';

/** What reading a sandbox's activity needs. */
export interface ActivityDeps {
  /** the runtime's root-only directory */
  dir: string;
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
            reject(err instanceof Error ? err : new Error(String(err)));
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

/**
 * Builds the reader of the idle culler's signals for the sandboxes under
 * `deps.dir`: CPU time and sshd processes from the sandbox's cgroups, and,
 * for Jupyter, busy kernels and its own last activity.
 */
export function createActivity(deps: ActivityDeps): (id: string) => Promise<Activity> {
  return async function activity(id: string): Promise<Activity> {
    const p = layout(deps.dir, id);
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
  };
}

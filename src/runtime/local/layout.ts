import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { WorkspaceSpec } from '../types.js';

/**
 * Directory layout of one workspace, all under the runtime's root-only directory.
 *
 * @param dir - the runtime's root-only directory (`LocalRuntimeOptions.dir`)
 * @param id - the workspace id
 */
export function layout(dir: string, id: string) {
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
    /** the workload identity token's directory, bound read-only at /var/run/secrets/atrium */
    secrets: join(runDir, 'secrets'),
    meta: join(runDir, 'meta.json'),
    /** present from the first signal of a stop until it is complete: a stop the control plane died during */
    stopping: join(runDir, 'stopping'),
    image: join(dir, 'homes', `${id}.img`),
    mount: join(dir, 'mnt', id),
    keys: join(dir, 'keys', id),
  };
}

/** The paths of one workspace, as `layout` gives them. */
export type Layout = ReturnType<typeof layout>;

/** What a workspace's `meta.json` holds: written at each start, kept (without GPUs) once it stops. */
export interface Meta {
  owner: string;
  uid: number;
  gpus: number[];
  cpuRequestMilli: number;
  memoryRequestBytes: number;
  environment: WorkspaceSpec['environment']['kind'];
  basePath: string;
  /** egress: the workspace's address in `runtime.egress.subnet` (kept across its starts) and what its link lets through */
  egress?: { slot: number; public?: boolean; allow?: string[] };
  /** the image its root came from (the host's /usr when absent) */
  image?: { name: string; digest: string };
  /** ids of the team volumes its sandbox binds */
  volumes?: string[];
}

/**
 * Reads and parses a JSON file.
 *
 * @returns the parsed value, or `undefined` when the file is missing or not JSON
 */
export async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

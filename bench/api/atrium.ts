import { freePort, startProcess, stopProcess, waitUntil, type Managed } from '../lib/proc.js';

export interface AtriumServer {
  baseUrl: string;
  proc: Managed;
  stop(): Promise<void>;
}

/**
 * Runs the built server (`node <main.js> serve`) as its own process, as it
 * runs in production, on loopback with log level warn. `database` is
 * `sqlite` (the file under `dataDir`) or a postgres:// URL. Inherited
 * ATRIUM_* variables are dropped so the machine's settings cannot leak in.
 *
 * The runtime is `none`: the benchmark measures the control plane's API, and
 * a local runtime would start real sandboxes for the seeded workspaces that
 * are recorded as running.
 */
export async function startAtrium(name: string, main: string, dataDir: string, database: string, logFile: string): Promise<AtriumServer> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ATRIUM_')));
  env.ATRIUM_LOG_LEVEL = 'warn';
  env.NODE_ENV = 'production';
  const args = [main, 'serve', '--host', '127.0.0.1', '--port', String(port), '--ssh-port', '0', '--data-dir', dataDir, '--database', database, '--runtime', 'none'];
  const proc = startProcess(name, process.execPath, args, { cwd: dataDir, env, logFile });
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitUntil(`${name} to answer`, async () => (await fetch(`${baseUrl}/healthz`)).ok, { timeoutMs: 60_000, proc });
  return { baseUrl, proc, stop: () => stopProcess(proc) };
}

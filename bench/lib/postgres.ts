import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { onCleanup, run } from './proc.js';
import { REPO_ROOT } from './paths.js';

export interface PostgresCluster {
  /** URL of the benchmark's own database in the cluster */
  url: string;
  version: string;
  /** the postmaster's process id, parent of every backend */
  pid(): number | undefined;
  stop(): Promise<void>;
}

/**
 * Starts a throwaway cluster on loopback with the repository's
 * scripts/pg-cluster.sh (fsync off: the benchmark measures the API, not the
 * disk) and creates the database `database` in it.
 */
export async function startPostgres(dir: string, port: number, database: string): Promise<PostgresCluster> {
  const script = join(REPO_ROOT, 'scripts', 'pg-cluster.sh');
  const stop = onCleanup('PostgreSQL', async () => {
    await run('bash', [script, 'stop', dir]);
  });
  const adminUrl = (await run('bash', [script, 'start', dir, String(port)])).trim().split('\n').at(-1)!;
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  let version: string;
  try {
    await client.query(`drop database if exists ${database}`);
    await client.query(`create database ${database}`);
    const r = await client.query<{ server_version: string }>('show server_version');
    version = r.rows[0]?.server_version ?? 'unknown';
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  const pid = () => {
    try {
      return Number(readFileSync(join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]) || undefined;
    } catch {
      return undefined;
    }
  };
  return { url: url.toString(), version, pid, stop };
}

import { spawnSync } from 'node:child_process';
import { run } from './proc.js';

function installed(pkg: string): boolean {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

/**
 * Installs the Debian packages a benchmark needs when they are missing (CI
 * machines start bare). Needs root for the install; says so otherwise.
 */
export async function ensureDebianPackages(packages: string[], log: (msg: string) => void): Promise<void> {
  const missing = packages.filter((p) => !installed(p));
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`missing Debian packages: ${missing.join(' ')}; install them as root (sudo bash scripts/deps.sh bench)`);
  log(`installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run('apt-get', ['update', '-qq'], { env });
  await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env });
  if (missing.includes('postgresql')) {
    // Debian starts a cluster of its own on 5432; the benchmark runs its own cluster and needs no other.
    const clusters = spawnSync('pg_lsclusters', ['-h'], { encoding: 'utf8' }).stdout ?? '';
    for (const line of clusters.split('\n')) {
      const [version, name] = line.trim().split(/\s+/);
      if (version && name) spawnSync('pg_ctlcluster', [version, name, 'stop']);
    }
  }
}

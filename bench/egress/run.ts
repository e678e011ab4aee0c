/**
 * bench/egress: download throughput through a workspace's public egress
 * (its veth, the host's routing table for workspaces, the nftables filter
 * and masquerade, the uplink) against the same download straight from the
 * host over the uplink, unfiltered, in the same run.
 *
 *   sudo npx tsx bench/egress/run.ts [--mib 256] [--reps 9]
 *
 * Needs root, runc, nftables and the built agent (scripts/deps.sh run). All
 * traffic stays on the machine: the "internet" is a network namespace the
 * benchmark makes (test/egress-world.ts), with an HTTP server at
 * 198.51.100.10 serving a file of `--mib` MiB.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../src/config/index.js';
import { egressNames } from '../../src/runtime/index.js';
import { createServer } from '../../src/server/index.js';
import { startWorld, WORLD } from '../../test/egress-world.js';
import { AGENT, run } from '../../test/sandbox.js';
import { hostProbeMs } from '../lib/cpu.js';
import { cleanupAll, cleanupOnSignals, onCleanup } from '../lib/proc.js';

const { values } = parseArgs({ options: { mib: { type: 'string', default: '256' }, reps: { type: 'string', default: '9' }, help: { type: 'boolean', default: false } } });
if (values.help) {
  process.stdout.write('usage: sudo npx tsx bench/egress/run.ts [--mib 256] [--reps 9]\n');
  process.exit(0);
}
const MIB = Number(values.mib);
const REPS = Number(values.reps);
if (!Number.isInteger(MIB) || MIB < 1 || !Number.isInteger(REPS) || REPS < 1) throw new Error('--mib and --reps take whole numbers of at least 1');
const started = performance.now();
const log = (msg: string) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

/** Downloads /big with curl in `netns` (or on the host), returning MiB/s as curl measured it. */
async function download(netns: string | undefined): Promise<number> {
  const curl = ['curl', '-sS', '-o', '/dev/null', '-w', '%{speed_download} %{size_download}', '-m', '120', `http://${WORLD.public}/big`];
  const r = netns ? await run('ip', ['netns', 'exec', netns, ...curl], 150_000) : await run(curl[0]!, curl.slice(1), 150_000);
  const [speed, size] = r.stdout.trim().split(' ').map(Number);
  if (r.code !== 0 || size !== MIB * 2 ** 20) throw new Error(`download ${netns ? 'through egress' : 'from the host'} failed (exit ${r.code}, ${size} bytes): ${r.stderr.trim()}`);
  return speed! / 2 ** 20;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/egress needs root (sandboxes, network namespaces, nftables)');
  cleanupOnSignals();
  log(`making the stand-in internet (a network namespace, ${MIB} MiB file at ${WORLD.public})`);
  const world = await startWorld({ bigFile: MIB * 2 ** 20 });
  onCleanup('world', () => world.close());
  // the anchor: the host reaches the test host straight over the uplink, for the length of the run
  await run('ip', ['route', 'replace', `${WORLD.public}/32`, 'via', WORLD.gateway, 'dev', world.uplink]);
  onCleanup('anchor route', async () => void (await run('ip', ['route', 'del', `${WORLD.public}/32`])));

  const dataDir = mkdtempSync(join(tmpdir(), 'atrium-bench-egress-'));
  const subnet = `10.211.${process.pid % 250}.0/24`;
  const config = loadConfig({
    env: { ATRIUM_LOG_LEVEL: 'error' },
    flags: {
      'listen.port': 0,
      'ssh.port': 0,
      dataDir,
      'runtime.kind': 'local',
      'runtime.agent': AGENT,
      'runtime.reserve': { cpu: '0', memory: '0' },
      'runtime.egress': { subnet, uplink: world.uplink, gateway: WORLD.gateway, dns: [WORLD.gateway] },
      profiles: [{ name: 'online', displayName: 'Online', environment: 'shell', egress: 'public', cpu: { guarantee: '100m', limit: '1' }, memory: { guarantee: '64Mi', limit: '256Mi' }, storage: '16Mi' }],
    },
  });
  const server = await createServer(config);
  const password = randomBytes(12).toString('hex');
  await server.identity.bootstrapAdmin('admin', password);
  const url = await server.listen();
  onCleanup('Atrium', async () => {
    const rt = server.runtime!;
    for (const o of await rt.inventory()) await rt.remove(o.workspaceId, { purge: true });
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const call = async (method: string, path: string, token: string, body?: unknown) => {
    const res = await fetch(url + path, { method, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
    return { status: res.status, body: (await res.json().catch(() => undefined)) as Record<string, unknown> };
  };
  const token = (await call('POST', '/api/v1/auth/login', '', { username: 'admin', password, token: { name: 'bench' } })).body.token as string;
  const created = await call('POST', '/api/v1/teams/admin/workspaces', token, { name: 'out', profile: 'online' });
  if (created.status !== 201) throw new Error(`create: HTTP ${created.status} ${JSON.stringify(created.body)}`);
  const id = created.body.id as string;
  for (let i = 0; ; i++) {
    const ws = (await call('GET', '/api/v1/teams/admin/workspaces/out', token)).body;
    if (ws.phase === 'running') break;
    if (ws.phase === 'failed' || i > 600) throw new Error(`the workspace did not run: ${JSON.stringify(ws)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const netns = egressNames(join(dataDir, 'local')).netns(id);
  log(`workspace running; its network namespace is ${netns}`);

  // one untimed download each way: page cache, ARP, conntrack
  await download(undefined);
  await download(netns);
  const direct: number[] = [];
  const filtered: number[] = [];
  const probe = hostProbeMs();
  for (let i = 0; i < REPS; i++) {
    // alternated, so drift in the host's speed falls on both alike
    direct.push(await download(undefined));
    filtered.push(await download(netns));
    log(`  round ${i + 1}: host ${direct.at(-1)!.toFixed(0)} MiB/s, workspace ${filtered.at(-1)!.toFixed(0)} MiB/s`);
  }
  const ratio = median(filtered) / median(direct);
  const out = [
    '',
    `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}; probe ${probe.toFixed(0)} ms`,
    `${MIB} MiB over HTTP from ${WORLD.public} (python3 http.server in a network namespace), curl, ${REPS} rounds, median MiB/s`,
    '',
    'path                                                 median   min    max',
    `host over the uplink, unfiltered (anchor)            ${median(direct).toFixed(0).padStart(6)} ${Math.min(...direct).toFixed(0).padStart(5)} ${Math.max(...direct).toFixed(0).padStart(6)}`,
    `workspace: veth, filter, masquerade, uplink          ${median(filtered).toFixed(0).padStart(6)} ${Math.min(...filtered).toFixed(0).padStart(5)} ${Math.max(...filtered).toFixed(0).padStart(6)}`,
    '',
    `filtered / unfiltered: ${ratio.toFixed(2)}×  (target ≥ 0.80×: ${ratio >= 0.8 ? 'PASS' : 'MISS'})`,
    '',
  ];
  process.stdout.write(out.join('\n'));
}

let status = 1;
try {
  await main();
  status = 0;
} catch (err) {
  process.stderr.write(`bench/egress failed: ${(err as Error).stack ?? (err as Error).message}\n`);
} finally {
  await cleanupAll();
}
process.exit(status);

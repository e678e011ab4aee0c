/**
 * bench/proxy: Atrium's workspace proxy against configurable-http-proxy and
 * a direct connection, in one run on this machine.
 *
 *   npx tsx bench/proxy/run.ts [--runs 5] [--duration 10] [--routes 10000] [--out bench/out]
 *
 * One upstream (Node http + ws) answers 100 bytes, 1 MiB, and echoes
 * WebSocket messages. wrk drives HTTP (64 connections, `--duration` seconds,
 * `--runs` runs per case, median reported); a WebSocket client drives echoes
 * (64 connections, one message in flight each). Then both proxies are
 * measured again with `--routes` workspaces registered (Atrium) or routes
 * added (CHP), with their resident memory. See bench/README.md.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { transform } from 'esbuild';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../lib/paths.js';
import { treeCpuSeconds } from '../lib/cpu.js';
import { cleanupAll, cleanupOnSignals, freePort, run, startProcess, stopProcess, waitUntil, type Managed } from '../lib/proc.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    duration: { type: 'string', default: '10' },
    routes: { type: 'string', default: '10000' },
    connections: { type: 'string', default: '64' },
    out: { type: 'string', default: join(REPO_ROOT, 'bench', 'out') },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write('usage: npx tsx bench/proxy/run.ts [--runs 5] [--duration 10] [--routes 10000] [--connections 64] [--out DIR]\n');
  process.exit(0);
}
const RUNS = Number(values.runs);
const DURATION = Number(values.duration);
const ROUTES = Number(values.routes);
const CONNECTIONS = Number(values.connections);
const started = Date.now();
const log = (m: string) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${m}\n`);
const work = mkdtempSync(join(tmpdir(), 'atrium-bench-proxy-'));
const TSX = ['--import', 'tsx'];
/** bench/proxy/atrium.ts as JavaScript: Atrium is measured as people run it, the built dist/ under plain node */
const ATRIUM_JS = join(work, 'atrium.mjs');

interface Target {
  url: (path: string) => string;
  ws: (path: string) => string;
  headers: Record<string, string>;
  /** what the proxy itself counted (Atrium's /metrics): requests answered 2xx and body bytes sent */
  counted?: () => Promise<{ ok: number; bytes: number }>;
}
interface Figure {
  perSecond: number;
  p50: number;
  p99: number;
  /** failed or short answers */
  errors: number;
  /** requests answered, or echoes */
  count: number;
  /** CPU seconds the proxy's process (and its relay helpers) used in the run */
  cpuSeconds?: number;
}

function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

const UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

/** wrk counts 3xx as success and says nothing of short bodies: every answer must have carried at least `minBytes`. */
async function wrk(t: Target, path: string, minBytes: number): Promise<Figure> {
  const args = ['-t', '2', '-c', String(CONNECTIONS), '-d', `${DURATION}s`, '--latency'];
  for (const [k, v] of Object.entries(t.headers)) args.push('-H', `${k}: ${v}`);
  const before = await t.counted?.();
  const out = await run('wrk', [...args, t.url(path)]);
  const after = await t.counted?.();
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const p50 = /^\s+50%\s+(\S+)/m.exec(out);
  const p99 = /^\s+99%\s+(\S+)/m.exec(out);
  if (!rps || !p50 || !p99) throw new Error(`unexpected wrk output:\n${out}`);
  let errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (socket) errors += socket.slice(1).reduce((n, v) => n + Number(v), 0);
  const read = /(\d+) requests in [\d.]+\w+, ([\d.]+)([KMGT]?B) read/.exec(out);
  if (!read) throw new Error(`unexpected wrk output:\n${out}`);
  // short answers count as errors too (wrk counts 3xx as success and does not check lengths)
  const requests = Number(read[1]);
  if ((Number(read[2]) * UNITS[read[3]!]!) / requests < minBytes * 0.95) {
    log(`  short answers: ${read[0]}`);
    errors = Math.max(errors, 1);
  }
  // the proxy's own count must agree with wrk's: every request it answered, with a whole body
  if (before && after) {
    const ok = after.ok - before.ok;
    const bytes = after.bytes - before.bytes;
    if (ok < requests || bytes < requests * minBytes * 0.99) {
      log(`  Atrium counted ${ok} answers and ${bytes} bytes for wrk's ${requests} requests`);
      errors = Math.max(errors, 1);
    }
  }
  if (errors) log(`  ${errors} failed or short answers from ${t.url(path)}`);
  return { perSecond: Number(rps[1]), p50: toMs(p50[1]!), p99: toMs(p99[1]!), errors, count: requests };
}

async function wsEcho(t: Target, path: string): Promise<Figure> {
  const headers = Object.entries(t.headers).map(([k, v]) => `${k}:${v}`);
  const out = await run(process.execPath, [...TSX, join(REPO_ROOT, 'bench/proxy/ws-load.ts'), t.ws(path), String(CONNECTIONS), String(DURATION), ...headers], { cwd: REPO_ROOT });
  const r = JSON.parse(out.trim().split('\n').at(-1)!) as { perSecond: number; p50: number; p99: number; echoes: number };
  return { perSecond: r.perSecond, p50: r.p50, p99: r.p99, errors: 0, count: r.echoes };
}

/** The unit a case's proxy CPU is counted per, and how many of them a run's count is. */
interface CpuUnit {
  name: string;
  of(count: number): number;
}

function median(xs: Figure[], unit: CpuUnit): Figure & { min: number; max: number; cpuPerUnit: number | null } {
  const mid = <T>(v: T[], key: (t: T) => number) => [...v].sort((a, b) => key(a) - key(b))[Math.floor(v.length / 2)]!;
  const by = (k: 'perSecond' | 'p50' | 'p99') => mid(xs, (x) => x[k])[k];
  const cpu = xs.filter((x) => x.cpuSeconds !== undefined).map((x) => x.cpuSeconds! / unit.of(x.count));
  return {
    perSecond: by('perSecond'),
    p50: by('p50'),
    p99: by('p99'),
    errors: xs.reduce((n, x) => n + x.errors, 0),
    count: mid(xs, (x) => x.count).count,
    min: Math.min(...xs.map((x) => x.perSecond)),
    max: Math.max(...xs.map((x) => x.perSecond)),
    cpuPerUnit: cpu.length > 0 ? mid(cpu, (c) => c) : null,
  };
}

function rssMiB(m: Managed): number {
  // the proxy's own process: the group leader is the node process itself
  const status = readFileSync(`/proc/${m.child.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

// CPU per unit: per 1,000 requests; per GiB of body; per 100,000 WebSocket messages (an echo is two: one each way)
const CASES = [
  { name: 'http 100 B', unit: 'req/s', cpu: { name: '1,000 requests', of: (n: number) => n / 1000 }, measure: (t: Target) => wrk(t, '/w/bench/ws0/small', 100) },
  { name: 'http 1 MiB', unit: 'req/s', cpu: { name: 'GiB', of: (n: number) => (n * 2 ** 20) / 2 ** 30 }, measure: (t: Target) => wrk(t, '/w/bench/ws0/big', 1024 * 1024) },
  { name: 'websocket echo', unit: 'echoes/s', cpu: { name: '100,000 messages', of: (n: number) => (2 * n) / 100_000 }, measure: (t: Target) => wsEcho(t, '/w/bench/ws0/echo') },
] as const;

type Results = Record<string, Record<string, ReturnType<typeof median>>>;

/** Peak resident memory seen after any run, per system. */
const rss: Record<string, number> = {};
/** Atrium's RSS with all workspaces, before and after its list threads started. */
const listThreads = { before: 0, after: 0 };

async function measureAll(systems: Record<string, Target>, procs: Record<string, Managed>, results: Results, label: string): Promise<void> {
  for (const c of CASES) {
    for (const [system, target] of Object.entries(systems)) {
      const runs: Figure[] = [];
      for (let i = 0; i < RUNS; i++) {
        const proc = procs[system];
        const cpu0 = proc ? treeCpuSeconds(proc.child.pid!) : 0;
        const figure = await c.measure(target);
        if (proc) figure.cpuSeconds = treeCpuSeconds(proc.child.pid!) - cpu0;
        runs.push(figure);
        if (proc) rss[`${system}${label}`] = Math.max(rss[`${system}${label}`] ?? 0, rssMiB(proc));
      }
      const m = median(runs, c.cpu);
      (results[`${system}${label}`] ??= {})[c.name] = m;
      const cpu = m.cpuPerUnit === null ? '' : `, proxy CPU ${m.cpuPerUnit.toFixed(3)} s per ${c.cpu.name}`;
      log(`${system}${label} ${c.name}: ${m.perSecond.toFixed(0)} ${c.unit} (runs ${m.min.toFixed(0)}–${m.max.toFixed(0)}), p50 ${m.p50.toFixed(2)} ms, p99 ${m.p99.toFixed(2)} ms${cpu}`);
    }
  }
}

async function startChp(upstream: number, routes: number): Promise<{ proc: Managed; target: Target }> {
  const [port, apiPort] = [await freePort(), await freePort()];
  const token = 'bench-chp-token';
  const proc = startProcess('configurable-http-proxy', process.execPath, [join(REPO_ROOT, 'node_modules/configurable-http-proxy/bin/configurable-http-proxy'), '--ip', '127.0.0.1', '--port', String(port), '--api-ip', '127.0.0.1', '--api-port', String(apiPort), '--log-level', 'error'], {
    env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: token },
    logFile: join(work, 'chp.log'),
  });
  const api = `http://127.0.0.1:${apiPort}/api/routes`;
  await waitUntil('configurable-http-proxy to answer', async () => (await fetch(api, { headers: { authorization: `token ${token}` } })).ok, { timeoutMs: 30_000, proc });
  for (let i = 0; i < routes; i++) {
    const r = await fetch(`${api}/w/bench/ws${i}`, { method: 'POST', headers: { authorization: `token ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ target: `http://127.0.0.1:${upstream}` }) });
    if (r.status !== 201) throw new Error(`CHP refused a route: ${r.status}`);
  }
  return { proc, target: { url: (p) => `http://127.0.0.1:${port}${p}`, ws: (p) => `ws://127.0.0.1:${port}${p}`, headers: {} } };
}

async function startAtrium(upstream: number, workspaces: number): Promise<{ proc: Managed; target: Target }> {
  const dir = mkdtempSync(join(work, 'atrium-'));
  const out = join(dir, 'ready.json');
  // registered first by a process of its own: the server measured starts with them already recorded
  await run(process.execPath, [ATRIUM_JS, 'seed', dir, String(upstream), String(workspaces), REPO_ROOT], { cwd: REPO_ROOT });
  const proc = startProcess('atrium', 'sh', ['-c', `exec "${process.execPath}" "${ATRIUM_JS}" serve "${dir}" ${upstream} ${workspaces} "${REPO_ROOT}" > "${out}"`], {
    cwd: REPO_ROOT,
    env: { ...process.env, NODE_ENV: 'production' },
    logFile: join(dir, 'atrium.log'),
  });
  let ready: { url: string; token: string; port: number } | undefined;
  await waitUntil(`Atrium with ${workspaces} workspaces to answer`, async () => {
    const text = readFileSync(out, 'utf8');
    if (text.includes('\n')) ready = JSON.parse(text);
    return ready !== undefined;
  }, { timeoutMs: 600_000, proc });
  const r = ready!;
  // "Host" as wrk spells it: another spelling makes wrk send its own Host header too
  const headers = { Host: `ws0--bench.localhost:${r.port}`, Authorization: `Bearer ${r.token}` };
  const counted = async () => {
    const text = await (await fetch(`http://127.0.0.1:${r.port}/metrics`)).text();
    return {
      ok: Number(/atrium_proxy_requests_total\{code="2xx"\} (\d+)/.exec(text)?.[1] ?? 0),
      bytes: Number(/atrium_proxy_sent_bytes_total (\d+)/.exec(text)?.[1] ?? 0),
    };
  };
  return { proc, target: { url: (p) => `http://127.0.0.1:${r.port}${p}`, ws: (p) => `ws://127.0.0.1:${r.port}${p}`, headers, counted } };
}

cleanupOnSignals();
try {
  // wrk --version exits 1 after printing its version
  await run('wrk', ['--version']).catch((err: Error) => {
    if (!/wrk \S+ \[/.test(err.message)) throw new Error('wrk is not installed: run scripts/deps.sh bench');
  });
  if (!existsSync(join(REPO_ROOT, 'dist/server/index.js'))) throw new Error('the built server (dist/) is missing: run scripts/deps.sh bench');
  const source = readFileSync(join(REPO_ROOT, 'bench/proxy/atrium.ts'), 'utf8');
  writeFileSync(ATRIUM_JS, (await transform(source, { loader: 'ts', format: 'esm', platform: 'node', target: 'node20' })).code);
  log(`bench/proxy: ${RUNS} runs × ${DURATION}s per case, ${CONNECTIONS} connections; then ${ROUTES.toLocaleString('en')} routes`);
  const upPort = await freePort();
  const upstream = startProcess('upstream', process.execPath, [...TSX, join(REPO_ROOT, 'bench/proxy/upstream.ts'), String(upPort)], { cwd: REPO_ROOT, logFile: join(work, 'upstream.log') });
  await waitUntil('the upstream to answer', async () => (await fetch(`http://127.0.0.1:${upPort}/small`)).ok, { timeoutMs: 30_000, proc: upstream });

  const results: Results = {};
  const direct: Target = { url: (p) => `http://127.0.0.1:${upPort}${p}`, ws: (p) => `ws://127.0.0.1:${upPort}${p}`, headers: {} };
  let chp = await startChp(upPort, 1);
  let atrium = await startAtrium(upPort, 1);
  await measureAll({ direct, chp: chp.target, atrium: atrium.target }, { chp: chp.proc, atrium: atrium.proc }, results, '');
  await stopProcess(chp.proc);
  await stopProcess(atrium.proc);

  log(`registering ${ROUTES.toLocaleString('en')} routes in CHP and ${ROUTES.toLocaleString('en')} workspaces in Atrium`);
  chp = await startChp(upPort, ROUTES);
  atrium = await startAtrium(upPort, ROUTES);
  await measureAll({ chp: chp.target, atrium: atrium.target }, { chp: chp.proc, atrium: atrium.proc }, results, '@routes');
  // the list threads (worker threads with their own database connection) start with the first list request; none ran above
  const beforeLists = rssMiB(atrium.proc);
  const auth = { authorization: atrium.target.headers.Authorization! };
  // eight clients at once, each reading ten pages of 50 in turn
  await Promise.all(Array.from({ length: 8 }, async () => {
    let cursor: string | null = null;
    for (let page = 0; page < 10; page++) {
      const r: Response = await fetch(atrium.target.url(`/api/v1/workspaces?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`), { headers: auth });
      if (r.status !== 200) throw new Error(`list: HTTP ${r.status} ${await r.text()}`);
      cursor = ((await r.json()) as { nextCursor: string | null }).nextCursor;
    }
  }));
  await new Promise((r) => setTimeout(r, 1000));
  listThreads.before = beforeLists;
  listThreads.after = rssMiB(atrium.proc);

  // the report
  const lines: string[] = [];
  const checks: Array<[string, boolean]> = [];
  lines.push('', `Atrium proxy vs configurable-http-proxy (CHP) and a direct connection: ${CONNECTIONS} connections, median of ${RUNS} runs of ${DURATION}s`, '');
  lines.push('case            system         rate  p50 ms  p99 ms  vs CHP  vs direct');
  lines.push('--------------  ------------  -----  ------  ------  ------  ---------');
  for (const c of CASES) {
    for (const system of ['direct', 'chp', 'atrium', 'chp@routes', 'atrium@routes']) {
      const r = results[system]![c.name]!;
      const base = results[system.endsWith('@routes') ? 'chp@routes' : 'chp']![c.name]!;
      const d = results.direct![c.name]!;
      lines.push(`${c.name.padEnd(14)}  ${system.replace('@routes', ` ${ROUTES / 1000}k`).padEnd(12)}  ${r.perSecond.toFixed(0).padStart(5)}  ${r.p50.toFixed(2).padStart(6)}  ${r.p99.toFixed(2).padStart(6)}  ${(r.perSecond / base.perSecond).toFixed(2).padStart(6)}  ${(r.perSecond / d.perSecond).toFixed(2).padStart(9)}`);
    }
    for (const label of ['', '@routes']) {
      const a = results[`atrium${label}`]![c.name]!;
      const b = results[`chp${label}`]![c.name]!;
      const suffix = label ? ` with ${ROUTES} routes` : '';
      // the echo-rate target is withdrawn: with client, proxy and upstream on two cores any proxy echoes at about half of direct; its CPU counts instead
      if (c.name !== 'websocket echo') checks.push([`${c.name}${suffix}: Atrium ≥ 1.5× CHP (${(a.perSecond / b.perSecond).toFixed(2)}×)`, a.perSecond >= 1.5 * b.perSecond]);
      if (a.cpuPerUnit !== null && b.cpuPerUnit !== null) {
        const limit = c.name === 'http 100 B' ? 0.6 : 0.5;
        const ratio = a.cpuPerUnit / b.cpuPerUnit;
        checks.push([`${c.name}${suffix}: Atrium's CPU per ${c.cpu.name} ≤ ${limit}× CHP's (${a.cpuPerUnit.toFixed(3)} vs ${b.cpuPerUnit.toFixed(3)} s: ${ratio.toFixed(2)}×)`, ratio <= limit]);
      }
      checks.push([`${c.name}${suffix}: Atrium p99 below CHP's (${a.p99.toFixed(2)} vs ${b.p99.toFixed(2)} ms)`, a.p99 < b.p99]);
    }
    const one = results.atrium![c.name]!.perSecond;
    const many = results['atrium@routes']![c.name]!.perSecond;
    checks.push([`${c.name}: Atrium with ${ROUTES} routes within 5% of 1 route (${((many / one - 1) * 100).toFixed(1)}%)`, many >= one * 0.95]);
  }
  lines.push('', 'proxy CPU (the process and its relay helpers, from /proc), median per run:', '');
  const k = `${ROUTES / 1000}k`;
  lines.push(`case            per                CHP s   Atrium s  ratio  ${`CHP ${k} s`.padStart(10)}  ${`Atrium ${k} s`.padStart(12)}  ratio`);
  for (const c of CASES) {
    const cell = (system: string) => results[system]![c.name]!.cpuPerUnit;
    const ratio = (a: number | null, b: number | null) => (a !== null && b !== null ? (a / b).toFixed(2) : '-');
    const f = (v: number | null) => (v === null ? '-' : v.toFixed(3));
    lines.push(`${c.name.padEnd(14)}  ${c.cpu.name.padEnd(16)}  ${f(cell('chp')).padStart(6)}  ${f(cell('atrium')).padStart(8)}  ${ratio(cell('atrium'), cell('chp')).padStart(5)}  ${f(cell('chp@routes')).padStart(9)}  ${f(cell('atrium@routes')).padStart(12)}  ${ratio(cell('atrium@routes'), cell('chp@routes')).padStart(5)}`);
  }
  const failed = Object.entries(results).flatMap(([system, cases]) => Object.entries(cases).filter(([, r]) => r.errors > 0).map(([c, r]) => `${system} ${c}: ${r.errors}`));
  checks.push([`no failed or short answers${failed.length ? ` (${failed.join('; ')})` : ''}`, failed.length === 0]);
  checks.push([`Atrium RSS with ${ROUTES} routes within 10% of 1 route (${rss.atrium!.toFixed(0)} → ${rss['atrium@routes']!.toFixed(0)} MiB)`, rss['atrium@routes']! <= rss.atrium! * 1.1]);
  checks.push([`Atrium (built dist/, the whole control plane) with ${ROUTES} workspaces ≤ 1.2× CHP's RSS with ${ROUTES} routes (${rss['atrium@routes']!.toFixed(0)} vs ${rss['chp@routes']!.toFixed(0)} MiB: ${(rss['atrium@routes']! / rss['chp@routes']!).toFixed(2)}×)`, rss['atrium@routes']! <= rss['chp@routes']! * 1.2]);
  lines.push('', `peak resident memory under load: CHP ${rss.chp!.toFixed(0)} MiB, ${rss['chp@routes']!.toFixed(0)} MiB with ${ROUTES} routes; Atrium ${rss.atrium!.toFixed(0)} MiB, ${rss['atrium@routes']!.toFixed(0)} MiB with ${ROUTES} workspaces`);
  lines.push(`Atrium's list threads (started by its first list request, none above): ${listThreads.before.toFixed(0)} → ${listThreads.after.toFixed(0)} MiB after 80 list pages, +${(listThreads.after - listThreads.before).toFixed(0)} MiB`, '');
  for (const [what, ok] of checks) lines.push(`${ok ? 'PASS' : 'MISS'}  ${what}`);
  lines.push('', `targets: ${checks.filter(([, ok]) => ok).length}/${checks.length} PASS; wall time ${((Date.now() - started) / 1000).toFixed(0)}s`);
  process.stdout.write(`${lines.join('\n')}\n`);
  mkdirSync(values.out, { recursive: true });
  const file = join(values.out, `proxy-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}Z.json`);
  writeFileSync(file, JSON.stringify({ options: { runs: RUNS, duration: DURATION, routes: ROUTES, connections: CONNECTIONS }, results, rss, listThreads, checks }, null, 2));
  log(`results written to ${file}`);
} finally {
  await cleanupAll();
  rmSync(work, { recursive: true, force: true });
}

/**
 * bench/api: Atrium's REST API against JupyterHub 3.0's, in the same run.
 *
 *   npx tsx bench/api/run.ts [--quick] [--samples N] [--warmup N] [--warmup-seconds S] [--only jupyterhub,sqlite,postgres] [--keep] [--no-build]
 *
 * Seeds 10,000 users, 1,000 shared teams and 100,000 workspaces into SQLite
 * and PostgreSQL, and the same 10,000 users into JupyterHub; then drives each
 * API over HTTP with bearer tokens at a fixed concurrency of 16 (warm-up of
 * at least 500 requests and 5 s first, checked; then at least 5,000 requests per call
 * timed by wrk) and prints req/s,
 * p50 and p99 per call, each Atrium read as a ratio to JupyterHub's
 * equivalent call measured in this run, with PASS/MISS against the targets.
 * Results also go to bench/out/api-<time>.json. See bench/README.md.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureDebianPackages } from '../lib/deps.js';
import { hostProbeMs, watchForeignLoad } from '../lib/cpu.js';
import { measureCall, type CallResult } from '../lib/load.js';
import { REPO_ROOT } from '../lib/paths.js';
import { startPostgres } from '../lib/postgres.js';
import { cleanupAll, cleanupOnSignals, freePort, onCleanup, run } from '../lib/proc.js';
import { startAtrium } from './atrium.js';
import { atriumCalls, hubCalls, type CallDef } from './calls.js';
import { createHubUsers, startJupyterHub } from './jupyterhub.js';
import { buildPlan, FULL_SIZES, QUICK_SIZES, type Plan, type Sizes } from './plan.js';
import { formatTable, HUB_REFERENCE, HUB_REFERENCE_GET_USER_MIN_RPS, PROBE_REFERENCE_MS, TARGETS, type Row } from './report.js';
import { seedStore, type SeedResult } from './seed.js';

const SYSTEMS = ['jupyterhub', 'sqlite', 'postgres'] as const;
type SystemId = (typeof SYSTEMS)[number];
const LABELS: Record<SystemId, string> = { jupyterhub: 'JupyterHub', sqlite: 'Atrium SQLite', postgres: 'Atrium PostgreSQL' };
/** The issue asks for at least this many timed requests per call. */
const MIN_SAMPLES = 5_000;

interface Options {
  sizes: Sizes;
  quick: boolean;
  samples: number;
  warmup: number;
  warmupSeconds: number;
  concurrency: number;
  systems: SystemId[];
  seed: number;
  build: boolean;
  keep: boolean;
  outDir: string;
}

const USAGE = `usage: npx tsx bench/api/run.ts [options]
  --quick              small data set and fewer samples, for a smoke test (default: full size)
  --samples N          timed requests per call, at least (default 5000; 1000 with --quick)
  --warmup N           untimed requests per call before timing, at least (default 500; 200 with --quick)
  --warmup-seconds S   ...and for at least S seconds (default 5; 1 with --quick)
  --concurrency N      connections, one request in flight each (default 16)
  --users N --teams N --workspaces N --drivers N   override the data set sizes
  --only LIST          comma-separated subset of: ${SYSTEMS.join(', ')} (default all)
  --seed N             seed of the data set and request mix (default 1)
  --no-build           run the repository's dist/ as it is instead of a fresh private build
  --keep               keep the work directory (databases, logs) under /tmp
  --out DIR            where to write the JSON results (default bench/out)`;

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      samples: { type: 'string' },
      warmup: { type: 'string' },
      'warmup-seconds': { type: 'string' },
      concurrency: { type: 'string', default: '16' },
      users: { type: 'string' },
      teams: { type: 'string' },
      workspaces: { type: 'string' },
      drivers: { type: 'string' },
      only: { type: 'string' },
      seed: { type: 'string', default: '1' },
      'no-build': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      out: { type: 'string', default: join(REPO_ROOT, 'bench', 'out') },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const int = (name: string, v: string | undefined, fallback: number): number => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: expected a positive integer, got ${v}`);
    return n;
  };
  const base = values.quick ? QUICK_SIZES : FULL_SIZES;
  const sizes: Sizes = {
    users: int('users', values.users, base.users),
    teams: int('teams', values.teams, base.teams),
    workspaces: int('workspaces', values.workspaces, base.workspaces),
    drivers: int('drivers', values.drivers, base.drivers),
    perDriver: base.perDriver,
  };
  const systems = values.only === undefined ? [...SYSTEMS] : values.only.split(',').map((s) => s.trim());
  for (const s of systems) if (!(SYSTEMS as readonly string[]).includes(s)) throw new Error(`--only: unknown system ${s}; known: ${SYSTEMS.join(', ')}`);
  return {
    sizes,
    quick: values.quick,
    samples: int('samples', values.samples, values.quick ? 1_000 : MIN_SAMPLES),
    warmup: int('warmup', values.warmup, values.quick ? 200 : 500),
    warmupSeconds: int('warmup-seconds', values['warmup-seconds'], values.quick ? 1 : 5),
    concurrency: int('concurrency', values.concurrency, 16),
    systems: SYSTEMS.filter((s) => systems.includes(s)),
    seed: int('seed', values.seed, 1),
    build: !values['no-build'],
    keep: values.keep,
    outDir: values.out,
  };
}

const started = performance.now();
function log(msg: string): void {
  const t = ((performance.now() - started) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[${t}s] ${msg}\n`);
}

function tail(file: string, lines = 20): string {
  if (!existsSync(file)) return '';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

/** Warning and error lines (pino JSON, level 40 and up) a server wrote to its log. */
function serverWarnings(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => {
      if (!line.startsWith('{')) return false;
      try {
        return ((JSON.parse(line) as { level?: number }).level ?? 0) >= 40;
      } catch {
        return false;
      }
    })
    .map((line) => line.slice(0, 300));
}

interface Measured {
  systemId: SystemId;
  call: CallDef;
  result: CallResult;
  /** CPUs other processes on the machine used meanwhile, when known */
  otherCpus: number | null;
  /** the host probe's time right before the call (`hostProbeMs`) */
  probeMs: number;
}

/** Above this many CPUs used by other processes during a call, its figures are flagged as skewed. */
const BUSY_MACHINE_CPUS = 0.1;

async function measureAll(systemId: SystemId, baseUrl: string, calls: CallDef[], opts: Options, ownPids: () => number[]): Promise<Measured[]> {
  const out: Measured[] = [];
  for (const call of calls) {
    log(`${LABELS[systemId]}: ${call.name} (warm-up of at least ${opts.warmup} requests and ${opts.warmupSeconds} s, then at least ${opts.samples} timed by wrk; ${opts.concurrency} connections)`);
    const probeMs = hostProbeMs();
    const watch = watchForeignLoad(ownPids);
    const result = await measureCall({
      baseUrl,
      concurrency: opts.concurrency,
      warmup: opts.warmup,
      warmupSeconds: opts.warmupSeconds,
      samples: opts.samples,
      expectStatus: call.expectStatus,
      next: call.next,
      check: call.check,
    });
    const otherCpus = watch.stop()?.cpus ?? null;
    log(
      `  ${result.rps.toFixed(0)} req/s over ${result.samples} requests after ${result.warmupRequests} warm-up requests, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms, max ${result.maxMs.toFixed(1)} ms; host probe ${probeMs.toFixed(0)} ms` +
        (otherCpus !== null && otherCpus > BUSY_MACHINE_CPUS ? `; other processes used ${otherCpus.toFixed(2)} CPUs meanwhile` : '') +
        (result.errors ? `, ${result.errors} errors; first: ${result.firstError}` : ''),
    );
    out.push({ systemId, call, result, otherCpus, probeMs });
  }
  return out;
}

function toRows(measured: Measured[], hubVersion: string | null): Row[] {
  const anchors = new Map(measured.filter((m) => m.systemId === 'jupyterhub').map((m) => [m.call.name, m.result]));
  return measured.map((m): Row => {
    const system = m.systemId === 'jupyterhub' ? `JupyterHub ${hubVersion ?? ''}`.trim() : LABELS[m.systemId];
    const anchorResult = m.call.anchor ? anchors.get(m.call.anchor) : undefined;
    const anchor =
      m.call.anchor && anchorResult
        ? { call: m.call.anchor, rpsRatio: m.result.rps / anchorResult.rps, p99Ratio: m.result.p99Ms / anchorResult.p99Ms }
        : null;
    const targets =
      m.systemId !== 'jupyterhub' && m.call.read
        ? {
            p99: m.result.p99Ms < TARGETS.readP99Ms && m.result.errors === 0 ? ('PASS' as const) : ('MISS' as const),
            fasterThanAnchor: anchor ? (anchor.rpsRatio > 1 && anchor.p99Ratio < 1 ? ('PASS' as const) : ('MISS' as const)) : null,
          }
        : null;
    return { systemId: m.systemId, system, call: m.call.name, description: m.call.description, result: m.result, otherCpus: m.otherCpus, probeMs: m.probeMs, anchor, targets };
  });
}

/**
 * Compiles the server into the work directory, so that a rebuild of dist/
 * during the run (the repository is worked on) cannot swap the code between
 * one database's measurements and the next. The copy resolves its packages
 * through a link to the repository's node_modules, and finds package.json
 * (its version, and "type": "module") where dist/ would.
 */
async function buildAtrium(work: string): Promise<string> {
  const dir = join(work, 'build');
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(REPO_ROOT, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'));
  log('building the server (tsc) into the work directory');
  await run('npx', ['tsc', '-p', join(REPO_ROOT, 'tsconfig.json'), '--outDir', join(dir, 'dist')], { cwd: REPO_ROOT });
  return join(dir, 'dist', 'main.js');
}

async function main(opts: Options): Promise<number> {
  const { sizes } = opts;
  const want = (s: SystemId) => opts.systems.includes(s);
  const atriumSystems = opts.systems.filter((s): s is 'sqlite' | 'postgres' => s !== 'jupyterhub');
  log(
    `bench/api: ${sizes.users} users, ${sizes.teams} shared teams, ${sizes.workspaces} workspaces, ${sizes.drivers} token holders; ` +
      `${opts.concurrency} connections, warm-up of at least ${opts.warmup} requests and ${opts.warmupSeconds} s, then at least ${opts.samples} requests per call timed by wrk; ${opts.systems.join(', ')}`,
  );
  if (opts.samples < MIN_SAMPLES) log(`note: ${opts.samples} samples per call is below the ${MIN_SAMPLES} a reportable run needs`);

  const packages = ['wrk', ...(want('postgres') ? ['postgresql'] : []), ...(want('jupyterhub') ? ['jupyterhub'] : [])];
  await ensureDebianPackages(packages, log);

  const work = mkdtempSync('/tmp/atrium-bench-api-');
  // PostgreSQL runs as the postgres user and must reach its directory inside.
  chmodSync(work, 0o755);
  onCleanup('work directory', () => {
    if (opts.keep) log(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  });
  const logFiles: string[] = [];

  try {
    let main = join(REPO_ROOT, 'dist', 'main.js');
    if (atriumSystems.length > 0) {
      if (opts.build) main = await buildAtrium(work);
      else if (!existsSync(main)) throw new Error('dist/main.js is missing: build first (npx tsc -p .) or drop --no-build');
    }

    log('building the data set');
    const plan: Plan = buildPlan(sizes, opts.seed);

    const pg = want('postgres') ? await startPostgres(join(work, 'pg'), await freePort(), 'bench_api') : null;
    if (pg) log(`PostgreSQL ${pg.version} on ${new URL(pg.url).host}`);

    // JupyterHub creates its users one by one through its API, which takes a
    // while; the Atrium databases are seeded meanwhile. Nothing is timed yet.
    const hubSetup = want('jupyterhub')
      ? (async () => {
          const dir = join(work, 'jupyterhub');
          logFiles.push(join(dir, 'jupyterhub.log'));
          const hub = await startJupyterHub(dir);
          log(`JupyterHub ${hub.version} up at ${hub.baseUrl}; creating ${plan.usernames.length} users through its API`);
          const seconds = await createHubUsers(hub, plan.usernames);
          log(`JupyterHub: ${plan.usernames.length} users created in ${seconds.toFixed(1)}s`);
          return { hub, seconds };
        })()
      : Promise.resolve(null);
    const seeding = (async () => {
      const seeded: Partial<Record<'sqlite' | 'postgres', SeedResult>> = {};
      for (const s of atriumSystems) {
        const target =
          s === 'sqlite' ? { kind: 'sqlite' as const, file: join(work, 'atrium-sqlite', 'atrium.db') } : { kind: 'postgres' as const, url: pg!.url, poolSize: 4 };
        log(`seeding ${LABELS[s]}`);
        const r = await seedStore(target, plan);
        log(`${LABELS[s]} seeded in ${r.seconds.toFixed(1)}s: ${Object.entries(r.counts).map(([k, v]) => `${v} ${k}`).join(', ')}`);
        seeded[s] = r;
      }
      return seeded;
    })();
    const [hubOutcome, seedOutcome] = await Promise.allSettled([hubSetup, seeding]);
    if (hubOutcome.status === 'rejected') throw hubOutcome.reason;
    if (seedOutcome.status === 'rejected') throw seedOutcome.reason;
    const hubReady = hubOutcome.value;
    const seeded = seedOutcome.value;
    // The rows were for seeding. Kept, they would be ~100 MB of old generation
    // in this process, which also times the requests: every minor GC here then
    // pauses for milliseconds, and every answer in flight is timed that much late.
    plan.rows = { users: [], teams: [], memberships: [], tokens: [], workspaces: [] };

    const measured: Measured[] = [];
    // The benchmark's own processes: this one and its children, and PostgreSQL's postmaster with its backends.
    const ownPids = () => [pg?.pid()].filter((p): p is number => p !== undefined);
    if (hubReady) {
      measured.push(...(await measureAll('jupyterhub', hubReady.hub.baseUrl, hubCalls(plan, hubReady.hub.token, opts.seed), opts, ownPids)));
      await hubReady.hub.stop();
    }
    for (const s of atriumSystems) {
      const dataDir = join(work, `atrium-${s}`);
      mkdirSync(dataDir, { recursive: true });
      const logFile = join(work, `atrium-${s}.log`);
      logFiles.push(logFile);
      const server = await startAtrium(LABELS[s], main, dataDir, s === 'sqlite' ? 'sqlite' : pg!.url, logFile);
      log(`${LABELS[s]} up at ${server.baseUrl}`);
      measured.push(...(await measureAll(s, server.baseUrl, atriumCalls(plan, opts.seed), opts, ownPids)));
      await server.stop();
      const warnings = serverWarnings(logFile);
      if (warnings.length > 0) log(`${LABELS[s]} logged ${warnings.length} warnings or errors, e.g.:\n  ${warnings.slice(0, 3).join('\n  ')}`);
    }
    await pg?.stop();

    const rows = toRows(measured, hubReady?.hub.version ?? null);
    // the reference was measured at full size only
    const fullSize = sizes.users === FULL_SIZES.users && sizes.workspaces === FULL_SIZES.workspaces;
    const hubGetUser = fullSize ? measured.find((m) => m.systemId === 'jupyterhub' && m.call.name === 'get-user')?.result : undefined;
    const wallSeconds = (performance.now() - started) / 1000;
    const verdicts = rows.flatMap((r) => (r.targets ? [r.targets.p99, r.targets.fasterThanAnchor].filter((v) => v !== null) : []));
    const passed = verdicts.filter((v) => v === 'PASS').length;
    const errors = rows.reduce((n, r) => n + r.result.errors, 0);
    const busiest = Math.max(0, ...rows.map((r) => r.otherCpus ?? 0));

    const lines = [
      '',
      `Atrium API vs JupyterHub: ${sizes.users.toLocaleString('en')} users, ${sizes.teams.toLocaleString('en')} shared teams, ` +
        `${sizes.workspaces.toLocaleString('en')} workspaces; ${opts.concurrency} connections; at least ${opts.samples} requests per call timed by wrk after a warm-up of at least ${opts.warmup} requests and ${opts.warmupSeconds} s`,
      '',
      formatTable(rows),
      '',
      'calls:',
      ...[...new Map(rows.map((r) => [r.call, r.description])).entries()].map(([c, d]) => `  ${c.padEnd(20)} ${d}`),
      `ratios: req/s and p99 of the Atrium call divided by those of its JupyterHub equivalent in this run (req/s above 1 and p99 below 1 are faster).`,
      `targets: reads p99 under ${TARGETS.readP99Ms} ms, and faster than JupyterHub's equivalent (more req/s and lower p99). create-workspace has no target.`,
      ...(hubReady ? [`JupyterHub on the reference machine: get-user ${HUB_REFERENCE['get-user']}; users-page ${HUB_REFERENCE['users-page']}.`] : []),
      ...(hubGetUser && hubGetUser.rps < HUB_REFERENCE_GET_USER_MIN_RPS
        ? [
            `note: JupyterHub's get-user ran at ${hubGetUser.rps.toFixed(0)} req/s in this run, below the ${HUB_REFERENCE_GET_USER_MIN_RPS} it never went under on the reference machine: ` +
              `this machine ran slower than the reference (on a shared host, its other guests), and every figure here with it.`,
          ]
        : []),
      ...(opts.quick || !fullSize
        ? ['note: not the full data set; the targets are set for 10,000 users and 100,000 workspaces.']
        : []),
      `others' CPU: CPUs that processes outside the benchmark used during the call (of ${cpus().length}).`,
      `probe ms: a fixed JSON round trip timed right before the call; the host's other guests slow it as they slow the servers (reference machine, calm: ${PROBE_REFERENCE_MS} ms; higher means a slower machine, while a normal probe does not prove a fast one).`,
      ...(busiest > BUSY_MACHINE_CPUS
        ? [`warning: the machine was not idle (other processes used up to ${busiest.toFixed(2)} CPUs during a call); these figures are skewed, run again on an idle machine.`]
        : []),
      '',
      `targets: ${passed}/${verdicts.length} PASS; ${errors} failed requests; wall time ${wallSeconds.toFixed(0)}s`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);

    mkdirSync(opts.outDir, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:]/g, '-').replace(/\.\d+Z$/, 'Z');
    const outFile = join(opts.outDir, `api-${stamp}.json`);
    const report = {
      benchmark: 'api',
      at: new Date().toISOString(),
      wallSeconds,
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryBytes: totalmem(), node: process.version, platform: process.platform },
      options: { sizes, quick: opts.quick, samples: opts.samples, warmup: opts.warmup, warmupSeconds: opts.warmupSeconds, concurrency: opts.concurrency, seed: opts.seed, systems: opts.systems },
      versions: { jupyterhub: hubReady?.hub.version ?? null, postgres: pg?.version ?? null },
      setup: { jupyterhubUserCreationSeconds: hubReady?.seconds ?? null, seeding: seeded },
      targets: { readP99Ms: TARGETS.readP99Ms, reference: HUB_REFERENCE },
      results: rows,
    };
    writeFileSync(outFile, `${JSON.stringify(report, null, 2)}\n`);
    log(`results written to ${outFile}`);
    return errors > 0 ? 1 : 0;
  } catch (err) {
    for (const f of logFiles) {
      const t = tail(f);
      if (t) process.stderr.write(`--- last lines of ${f}\n${t}\n`);
    }
    throw err;
  }
}

cleanupOnSignals();
let status = 1;
try {
  status = await main(parseOptions(process.argv.slice(2)));
} catch (err) {
  process.stderr.write(`bench/api failed: ${(err as Error).stack ?? String(err)}\n`);
} finally {
  await cleanupAll();
}
process.exit(status);

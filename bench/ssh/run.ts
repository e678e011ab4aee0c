/**
 * bench/ssh: SSH into an Atrium workspace, through the gateway and through
 * the tunnel, against plain OpenSSH to this machine's own sshd, directly and
 * through it as a jump host, all in one run on loopback (issue 14).
 *
 *   sudo npx tsx bench/ssh/run.ts [--quick] [--setups 20] [--mib 512] [--transfers 3] [--paths direct,bastion,gateway,tunnel]
 *                                 [--cpu-prof] [--node-args=--trace-gc] [--keep] [--out DIR]
 *
 * For each path: connection setup (the median wall time of `ssh … true`),
 * throughput of a file of random bytes each way (`ssh … 'cat > /dev/null'
 * < file`, `ssh … 'cat file' > /dev/null`) and the CPU seconds per GiB the
 * client, the control plane (`atrium serve` and its relay) and the server
 * side spent, read from /proc and cgroups. Prints ratios to the anchors and
 * PASS/MISS against the targets; results also go to bench/out/ssh-<time>.json.
 * See bench/README.md.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { hostProbeMs } from '../lib/cpu.js';
import { REPO_ROOT } from '../lib/paths.js';
import { cleanupAll, cleanupOnSignals, onCleanup, run } from '../lib/proc.js';
import { cgroupCpuFile, cgroupSeconds, createClientGroup, hasChildren, machineSeconds, ownSeconds, setClockTicks, treeSeconds, type ClientGroup } from './cpu.js';
import { evaluateTargets, formatCpu, formatMain, formatTargets, lostExitNotes, median, referenceNotes, REFERENCE, TARGETS, type CpuPerGiB, type Direction, type PathResult, type Transfer } from './report.js';
import { startAtrium, startPlainSshd, BENCH_PROFILE, type AtriumForSsh, type PlainSshd } from './servers.js';
import { PATH_IDS, runSsh, sshPaths, type PathId, type SshPath } from './ssh.js';

const USAGE = `usage: sudo npx tsx bench/ssh/run.ts [options]
  --quick              a smoke run: 5 setups, 64 MiB, one transfer each way
  --setups N           timed \`ssh … true\` per path (default 20)
  --mib N              size of the random file carried, MiB (default 512)
  --transfers N        transfers each way per path, the median reported (default 3)
  --paths LIST         comma-separated subset of: ${PATH_IDS.join(', ')} (default all)
  --cpu-prof           write a V8 CPU profile of \`atrium serve\` to bench/out/ssh-prof-<time>/
  --node-args=ARGS     more options for the node running \`atrium serve\`, e.g. --node-args=--trace-gc (output in the server's log: add --keep)
  --keep               keep the work directory (logs, keys, the file) under /tmp
  --out DIR            where the JSON result goes (default bench/out)
Needs root (the local runtime makes runc sandboxes; sshd runs as root), Debian's
openssh-server and runc, and a built dist/ with the agent (bash bench/ssh/run.sh does it all).`;

interface Options {
  setups: number;
  mib: number;
  transfers: number;
  paths: PathId[];
  cpuProf: boolean;
  nodeArgs: string[];
  keep: boolean;
  outDir: string;
  quick: boolean;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      setups: { type: 'string' },
      mib: { type: 'string' },
      transfers: { type: 'string' },
      paths: { type: 'string', default: PATH_IDS.join(',') },
      'cpu-prof': { type: 'boolean', default: false },
      'node-args': { type: 'string', default: '' },
      keep: { type: 'boolean', default: false },
      out: { type: 'string', default: join(REPO_ROOT, 'bench', 'out') },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const count = (v: string | undefined, fallback: number, name: string) => {
    const n = Number(v ?? fallback);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} takes a whole number of at least 1, not ${v}`);
    return n;
  };
  const paths = values.paths.split(',').map((p) => p.trim()).filter(Boolean);
  for (const p of paths) if (!(PATH_IDS as readonly string[]).includes(p)) throw new Error(`--paths: unknown path ${p} (${PATH_IDS.join(', ')})`);
  return {
    quick: values.quick,
    setups: count(values.setups, values.quick ? 5 : 20, 'setups'),
    mib: count(values.mib, values.quick ? 64 : 512, 'mib'),
    transfers: count(values.transfers, values.quick ? 1 : 3, 'transfers'),
    paths: PATH_IDS.filter((p) => paths.includes(p)),
    cpuProf: values['cpu-prof'],
    nodeArgs: values['node-args'].split(/\s+/).filter(Boolean),
    keep: values.keep,
    outDir: values.out,
  };
}

const started = performance.now();
/** the server under test, once started: a run that breaks says whether it died */
let server: AtriumForSsh | undefined;
const log = (msg: string) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);

/** Fails early, with what to do, when something the run needs is missing. */
async function preflight(opts: Options): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root: the local runtime makes runc sandboxes, and sshd switches users (sudo npx tsx bench/ssh/run.ts)');
  const needs = ['ssh', 'ssh-keygen', '/usr/sbin/sshd', 'getconf', ...(opts.paths.some((p) => p === 'gateway' || p === 'tunnel') ? ['runc'] : [])];
  for (const tool of needs) {
    await run('sh', ['-c', `command -v ${tool}`]).catch(() => {
      throw new Error(`${tool} is missing: install openssh-client, openssh-server and runc (sudo bash bench/ssh/run.sh installs them)`);
    });
  }
}

/** Writes `mib` MiB of random bytes (not zeros: nothing on the way may compress or skip them) and returns their SHA-256. */
function writeRandomFile(file: string, mib: number): string {
  const hash = createHash('sha256');
  const chunk = Buffer.allocUnsafe(4 << 20);
  const fd = openSync(file, 'w', 0o644);
  try {
    for (let left = mib << 20; left > 0; left -= chunk.length) {
      const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
      randomFillSync(part);
      hash.update(part);
      for (let off = 0; off < part.length; ) off += writeSync(fd, part, off);
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** Whether ssh2 (the gateway's SSH library) found its native crypto binding; without it some ciphers run in JavaScript. */
function ssh2Binding(): boolean {
  try {
    const dir = dirname(createRequire(import.meta.url).resolve('ssh2/package.json'));
    return existsSync(join(dir, 'lib', 'protocol', 'crypto', 'build', 'Release', 'sshcrypto.node'));
  } catch {
    return false;
  }
}

/** The counters read before and after each transfer. */
interface Snapshot {
  machine: { busy: number; steal: number };
  own: number;
  client: number | null;
  sshd: Map<number, { comm: string; seconds: number }>;
  serve: Map<number, { comm: string; seconds: number }> | null;
  sandbox: number | null;
}

interface Meters {
  sshd: PlainSshd;
  atrium: AtriumForSsh | undefined;
  client: ClientGroup | undefined;
  sandboxCpu: string | undefined;
}

function snapshot(m: Meters): Snapshot {
  return {
    machine: machineSeconds(),
    own: ownSeconds(),
    client: m.client ? cgroupSeconds(m.client.cpu) : null,
    sshd: treeSeconds(m.sshd.proc.child.pid!),
    serve: m.atrium ? treeSeconds(m.atrium.proc.child.pid!) : null,
    sandbox: m.sandboxCpu ? cgroupSeconds(m.sandboxCpu) : null,
  };
}

/** The growth of a process tree's CPU between two snapshots: processes that started meanwhile count from zero. */
function treeDelta(a: Map<number, { comm: string; seconds: number }>, b: Map<number, { comm: string; seconds: number }>, only?: (comm: string) => boolean): number {
  let sum = 0;
  for (const [pid, p] of b) if (!only || only(p.comm)) sum += p.seconds - (a.get(pid)?.seconds ?? 0);
  return sum;
}

/** Waits (up to 2 s) until the servers have finished with the last connection, so its teardown is counted. */
async function settle(m: Meters, sandboxProcs: () => number, idleProcs: number): Promise<void> {
  const deadline = Date.now() + 2000;
  while (Date.now() < deadline && (hasChildren(m.sshd.proc.child.pid!) || sandboxProcs() > idleProcs)) await new Promise((r) => setTimeout(r, 20));
}

/** One `ssh … true`, timed; a lost exit status is counted on the path's result. */
async function timeSetup(path: SshPath, res: PathResult): Promise<number> {
  const r = await runSsh(path, 'true');
  if (r.lostExitStatus) res.lostExitStatus++;
  return r.seconds;
}

/** One transfer of the random file, with where its CPU went. */
async function transfer(
  path: SshPath,
  res: PathResult,
  direction: Direction,
  ctx: { meters: Meters; file: string; bytes: number; setupMedian: number; probeMs: number; sandboxProcs: () => number; idleSandboxProcs: number },
): Promise<Transfer> {
  const m = ctx.meters;
  const before = snapshot(m);
  const r =
    direction === 'up'
      ? await runSsh(path, 'cat > /dev/null', { stdin: ctx.file, cgroup: m.client?.procs })
      : await runSsh(path, `cat ${path.remoteFile}`, { stdout: 'discard', cgroup: m.client?.procs });
  await settle(m, ctx.sandboxProcs, ctx.idleSandboxProcs);
  // what ssh itself counts as carried: a transfer cut short fails here, even one whose exit status got lost
  const carried = direction === 'up' ? r.sent : r.received;
  if (!(carried >= ctx.bytes)) throw new Error(`${path.label} ${direction}: ssh reports ${carried} bytes carried, fewer than the file's ${ctx.bytes}`);
  if (r.lostExitStatus) res.lostExitStatus++;
  const after = snapshot(m);
  const gib = ctx.bytes / 2 ** 30;
  const atriumPath = path.id === 'gateway' || path.id === 'tunnel';
  const client = before.client !== null && after.client !== null ? after.client - before.client : null;
  const sshd = treeDelta(before.sshd, after.sshd);
  const serve = before.serve && after.serve ? treeDelta(before.serve, after.serve) : null;
  const relay = before.serve && after.serve ? treeDelta(before.serve, after.serve, (c) => c.startsWith('atrium-agent')) : null;
  const sandbox = before.sandbox !== null && after.sandbox !== null ? after.sandbox - before.sandbox : null;
  const accounted = (after.own - before.own) + (client ?? 0) + sshd + (serve ?? 0) + (sandbox ?? 0);
  const cpu: CpuPerGiB = {
    client: client === null ? null : client / gib,
    controlPlane: atriumPath && serve !== null && relay !== null ? { node: (serve - relay) / gib, relay: relay / gib, total: serve / gib } : null,
    server: atriumPath ? (sandbox === null ? null : sandbox / gib) : sshd / gib,
    othersCpus: client === null ? null : Math.max(0, after.machine.busy - before.machine.busy - accounted) / r.seconds,
    stealCpus: (after.machine.steal - before.machine.steal) / r.seconds,
  };
  const dataSeconds = r.seconds - ctx.setupMedian;
  return {
    direction,
    bytes: ctx.bytes,
    seconds: r.seconds,
    mbps: ctx.bytes / 1e6 / (dataSeconds > 0 ? dataSeconds : r.seconds),
    grossMbps: ctx.bytes / 1e6 / r.seconds,
    cpu,
    probeMs: ctx.probeMs,
  };
}

/** Copies the random file into the workspace's home through the tunnel (or gateway) and checks it arrived whole. */
async function seedWorkspace(upload: SshPath, check: SshPath, file: string, remote: string, sha256: string): Promise<void> {
  await runSsh(upload, `cat > ${remote}`, { stdin: file });
  // the sum printed is the check; an exit status lost on the way (see runSsh) does not spoil it
  const sum = (await runSsh(check, `sha256sum ${remote}`, { stdout: 'keep' })).stdout.trim().split(/\s+/)[0];
  if (sum !== sha256) throw new Error(`the file in the workspace differs from the one sent (sha256 ${sum} ≠ ${sha256})`);
}

async function main(): Promise<number> {
  const opts = options();
  await preflight(opts);
  setClockTicks(Number((await run('getconf', ['CLK_TCK'])).trim()));
  cleanupOnSignals();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const work = mkdtempSync(join('/tmp', 'atrium-bench-ssh-'));
  onCleanup('work directory', () => {
    if (opts.keep) log(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  });
  const wantAtrium = opts.paths.includes('gateway') || opts.paths.includes('tunnel');

  log(`writing ${opts.mib} MiB of random bytes`);
  const file = join(work, 'random.bin');
  const bytes = opts.mib * 2 ** 20;
  const sha256 = writeRandomFile(file, opts.mib);

  const identity = join(work, 'id_ed25519');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'atrium-bench-ssh', '-f', identity]);
  const publicKey = readFileSync(`${identity}.pub`, 'utf8').trim();

  log('starting sshd (the anchor) on loopback');
  const sshd = await startPlainSshd(work, publicKey);
  let atrium: AtriumForSsh | undefined;
  let profDir: string | undefined;
  if (wantAtrium) {
    profDir = opts.cpuProf ? join(opts.outDir, `ssh-prof-${stamp}Z`) : undefined;
    if (profDir) mkdirSync(profDir, { recursive: true });
    log(`starting atrium serve (local runtime) and workspace admin/ssh-bench (profile ${BENCH_PROFILE.name}: CPU limit ${BENCH_PROFILE.cpu.limit})`);
    const nodeArgs = [...(profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []), ...opts.nodeArgs];
    atrium = await startAtrium(work, publicKey, { workspace: 'ssh-bench', nodeArgs });
    server = atrium;
  }
  const knownHosts = join(work, 'known_hosts');
  writeFileSync(
    knownHosts,
    [
      `[127.0.0.1]:${sshd.port} ${sshd.hostKey}`,
      ...(atrium ? [`[127.0.0.1]:${atrium.gateway.port} ${atrium.gateway.hostKey}`, `atrium.${atrium.team}.${atrium.workspace} ${atrium.workspaceHostKey}`] : []),
      '',
    ].join('\n'),
  );
  const workspaceFile = 'ssh-bench.bin';
  const all = sshPaths({
    identity,
    knownHosts,
    sshdPort: sshd.port,
    localFile: file,
    workspaceFile,
    ...(atrium ? { atrium: { url: atrium.url, token: atrium.token, username: atrium.username, team: atrium.team, workspace: atrium.workspace, gatewayPort: atrium.gateway.port, configHome: join(work, 'config') } } : {}),
  });
  const paths = opts.paths.map((id) => all[id]).filter((p): p is SshPath => p !== undefined);

  const client = createClientGroup(`atrium-bench-ssh-${process.pid}`);
  if (client) onCleanup('client cgroup', () => client.remove());
  else log('no cgroup for the ssh clients could be made: client CPU is not reported');
  const sandboxCpu = atrium ? cgroupCpuFile(atrium.sandboxPid) : undefined;
  const sandboxProcsFile = sandboxCpu ? join(dirname(sandboxCpu), 'cgroup.procs') : undefined;
  const sandboxProcs = () => (sandboxProcsFile ? readFileSync(sandboxProcsFile, 'utf8').split('\n').filter(Boolean).length : 0);
  const meters: Meters = { sshd, atrium, client, sandboxCpu };

  if (atrium && (all.tunnel || all.gateway)) {
    log(`copying the file into the workspace (${opts.mib} MiB) and checking its SHA-256`);
    await seedWorkspace(all.tunnel!, all.gateway ?? all.tunnel!, file, workspaceFile, sha256);
  }
  const results = new Map<PathId, PathResult>();
  // one untimed connection each first (caches, the JIT of the servers and of the tunnel's command), which also says what was negotiated
  for (const p of paths) {
    const first = await runSsh(p, 'true');
    const n = first.negotiated;
    results.set(p.id, { id: p.id, label: p.label, negotiated: n, setups: [], transfers: [], lostExitStatus: first.lostExitStatus ? 1 : 0 });
    log(`${p.label}: ${n.cipher}${n.mac === '<implicit>' ? '' : ` + ${n.mac}`}, ${n.kex}`);
  }
  log(`connection setup: ${opts.setups} × \`ssh … true\` per path, the paths in turn`);
  for (let i = 0; i < opts.setups; i++) for (const p of paths) results.get(p.id)!.setups.push(await timeSetup(p, results.get(p.id)!));
  for (const p of paths) log(`  ${p.label}: median ${median(results.get(p.id)!.setups).toFixed(3)} s`);

  const idleSandboxProcs = sandboxProcs();
  log(`throughput: ${opts.transfers} round(s) of ${opts.mib} MiB up and down per path, the paths in turn`);
  for (let round = 0; round < opts.transfers; round++) {
    const probeMs = hostProbeMs();
    for (const p of paths) {
      const res = results.get(p.id)!;
      for (const direction of ['up', 'down'] as const) {
        const t = await transfer(p, res, direction, { meters, file, bytes, setupMedian: median(res.setups), probeMs, sandboxProcs, idleSandboxProcs });
        res.transfers.push(t);
        const cp = t.cpu.controlPlane ? `, control plane ${t.cpu.controlPlane.total.toFixed(2)} CPU-s/GiB` : '';
        const others = `${t.cpu.othersCpus === null ? '' : `, others ${t.cpu.othersCpus.toFixed(2)} CPUs`}, steal ${t.cpu.stealCpus.toFixed(2)}`;
        log(`  round ${round + 1} ${p.label} ${direction}: ${t.seconds.toFixed(2)} s, ${t.mbps.toFixed(0)} MB/s${cp}${others}`);
      }
    }
  }

  if (atrium) {
    log('deleting the workspace and stopping atrium serve');
    await atrium.stop();
  }

  const list = [...results.values()];
  const byId = Object.fromEntries(results) as Partial<Record<PathId, PathResult>>;
  const targets = evaluateTargets(byId);
  const binding = ssh2Binding();
  const openssh = (await run('ssh', ['-V'])).trim();
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${openssh}`;
  const out = [
    '',
    machine,
    `SSH on loopback, ${opts.mib} MiB of random bytes per transfer, median of ${opts.transfers} each way; setup: median of ${opts.setups} × \`ssh … true\``,
    'MB/s = 10^6 bytes per second of the data phase: the file\'s size over (the ssh process\'s wall time − the path\'s median setup).',
    ...(opts.mib < 512 ? [`With ${opts.mib} MiB a transfer is short: the setup subtracted and its CPU counted weigh far more than at 512 MiB, so this run checks that everything works rather than measuring.`] : []),
    '',
    formatMain(list),
    '',
    'CPU seconds per GiB carried (median), from /proc and cgroups: client = ssh and its ProxyCommand; control plane = atrium serve (node) and its relay;',
    "server side = the host's sshd tree (direct, bastion: jump included) or the workspace's sandbox; others' CPUs = the machine's other busy time during the transfer.",
    '',
    formatCpu(list),
    '',
    formatTargets(targets),
    '',
    `Issue 14 on the reference machine: direct ${REFERENCE.direct.mbps.join('–')} MB/s, ${REFERENCE.direct.setup} s setup; bastion ${REFERENCE.bastion.mbps.join('–')} MB/s, ${REFERENCE.bastion.setup} s.`,
    ...referenceNotes(byId),
    ...lostExitNotes(list),
    ...(all.gateway && opts.paths.includes('gateway')
      ? [`The gateway's second hop (to the workspace's sshd) is ssh2's client, which asks for aes128-gcm@openssh.com first; ssh2's native crypto binding is ${binding ? 'built' : 'NOT built (chacha20-poly1305 runs in JavaScript)'}.`]
      : []),
    '',
  ];
  process.stdout.write(out.join('\n'));
  const transfers = list.flatMap((p) => p.transfers.map((t) => ({ p, t })));
  const busy = transfers.filter(({ t }) => (t.cpu.othersCpus ?? 0) > 0.1);
  if (busy.length > 0) {
    const worst = Math.max(...busy.map(({ t }) => t.cpu.othersCpus ?? 0));
    const where = [...new Set(busy.map(({ p }) => p.id))].map((id) => `${id} ×${busy.filter(({ p }) => p.id === id).length}`).join(', ');
    process.stdout.write(`warning: other processes used more than 0.1 CPUs during ${busy.length} of ${transfers.length} transfers (up to ${worst.toFixed(2)}; ${where}): those figures are skewed.\n`);
  }
  const stolen = transfers.filter(({ t }) => t.cpu.stealCpus > 0.05);
  if (stolen.length > 0) process.stdout.write(`warning: the hypervisor took CPU time (steal above 0.05 CPUs) during ${stolen.length} of ${transfers.length} transfers: the machine ran slower then.\n`);

  mkdirSync(opts.outDir, { recursive: true });
  const jsonFile = join(opts.outDir, `ssh-${stamp}Z.json`);
  writeFileSync(
    jsonFile,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        options: opts,
        machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryBytes: totalmem(), node: process.version, openssh },
        profile: BENCH_PROFILE,
        ssh2NativeBinding: binding,
        targets: TARGETS,
        reference: REFERENCE,
        paths: list,
        verdicts: targets,
        cpuProfileDir: profDir,
      },
      null,
      2,
    ),
  );
  log(`results written to ${jsonFile}${profDir ? `; CPU profile of atrium serve in ${profDir}` : ''}; wall time ${((performance.now() - started) / 1000).toFixed(0)} s`);
  return 0;
}

let status = 1;
try {
  status = await main();
} catch (err) {
  process.stderr.write(`bench/ssh failed: ${(err as Error).message}\n`);
  const died = server?.died();
  if (died) process.stderr.write(`${died}\n`);
} finally {
  await cleanupAll();
}
process.exit(status);

import { readdirSync, readFileSync } from 'node:fs';

/**
 * How much CPU processes outside the benchmark used while it measured. On a
 * shared machine another job's load skews every figure, so each measurement
 * reports it: the machine's busy time (from /proc/stat) minus the time of
 * the benchmark's own processes (this one, its children such as the servers
 * under test, and any other roots given, like the PostgreSQL postmaster with
 * its backends). Linux only; elsewhere it reports nothing.
 */

/** Clock ticks per second of /proc's counters (USER_HZ, 100 on every Linux architecture in use). */
const TICKS_PER_SECOND = 100;

interface Proc {
  ppid: number;
  ticks: number;
}

function readProcs(): Map<number, Proc> {
  const procs = new Map<number, Proc>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name is in parentheses and may itself contain spaces or parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // After the name: state(0) ppid(1) … utime(11) stime(12)
      procs.set(Number(entry), { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // the process ended while /proc was read
    }
  }
  return procs;
}

/** CPU seconds the whole machine has been busy since boot (user, nice and system time of all CPUs). */
export function machineBusySeconds(): number {
  return busyTicks() / TICKS_PER_SECOND;
}

/** user + nice + system ticks of all CPUs; interrupt time is left out, as it is not charged to any process. */
function busyTicks(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const [user, nice, system] = line.trim().split(/\s+/).slice(1, 4).map(Number);
  return user! + nice! + system!;
}

function descendants(procs: Map<number, Proc>, roots: Set<number>): Set<number> {
  const ours = new Set<number>();
  for (const pid of procs.keys()) {
    let p: number | undefined = pid;
    for (let depth = 0; p !== undefined && p > 1 && depth < 64; depth++) {
      if (roots.has(p)) {
        ours.add(pid);
        break;
      }
      p = procs.get(p)?.ppid;
    }
  }
  return ours;
}

export interface ForeignLoad {
  /** average CPUs used by other processes, e.g. 0.8 = most of one core */
  cpus: number;
}

/** Starts watching; `stop()` returns what others used since. `roots()` is asked at both ends (a server may start later). */
export function watchForeignLoad(roots: () => number[]): { stop(): ForeignLoad | null } {
  if (process.platform !== 'linux') return { stop: () => null };
  const started = performance.now();
  const busy0 = busyTicks();
  const procs0 = readProcs();
  return {
    stop() {
      const seconds = (performance.now() - started) / 1000;
      const busy1 = busyTicks();
      const procs1 = readProcs();
      const rootSet = new Set([process.pid, ...roots()]);
      const ours = new Set([...descendants(procs0, rootSet), ...descendants(procs1, rootSet)]);
      let ourTicks = 0;
      for (const pid of ours) {
        const now = procs1.get(pid)?.ticks;
        if (now !== undefined) ourTicks += now - (procs0.get(pid)?.ticks ?? 0);
      }
      const foreign = Math.max(0, busy1 - busy0 - ourTicks) / TICKS_PER_SECOND;
      return { cpus: seconds > 0 ? foreign / seconds : 0 };
    },
  };
}

/** Whether `hostProbeMs` has run once in this process (the JIT has compiled its loop). */
let probeWarm = false;

/** A page of 50 list items, much like the ones the API benchmark's servers write and read. */
const PROBE_PAGE = Array.from({ length: 50 }, (_, i) => ({
  id: `w_${i.toString(36).padStart(16, '0')}`,
  team: `team-${i}`,
  name: `ws-${i}`,
  phase: 'running',
  resources: { cpu: { guarantee: '1', limit: '2' }, memory: { guarantee: '2Gi', limit: '4Gi' }, storage: '10Gi' },
  createdAt: new Date(1_700_000_000_000 + i * 86_400_000).toISOString(),
}));

/**
 * Times a fixed piece of single-threaded work (writing and reading back a
 * page of 50 list items as JSON, 2,000 times; the median of three rounds).
 * A virtual machine's own counters (see `watchForeignLoad`) cannot see the
 * host's other guests, yet they slow the same work by a third or more at
 * busy times; this figure, taken right before a measurement, shows how fast
 * the machine was then. Lower is faster.
 */
export function hostProbeMs(): number {
  if (!probeWarm) {
    // the first rounds in a process also time the JIT compiling the loop
    probeWarm = true;
    hostProbeMs();
  }
  const rounds: number[] = [];
  let items = 0;
  for (let r = 0; r < 3; r++) {
    const start = performance.now();
    for (let i = 0; i < 2000; i++) items += (JSON.parse(JSON.stringify(PROBE_PAGE)) as unknown[]).length;
    rounds.push(performance.now() - start);
  }
  if (items !== 3 * 2000 * PROBE_PAGE.length) throw new Error('host probe: JSON round trip lost items');
  return rounds.sort((a, b) => a - b)[1]!;
}

/**
 * CPU seconds a process and everything under it have used so far: its own
 * user and system time, that of its children it has reaped (the relay
 * helpers a proxy starts and ends), and that of its live descendants.
 * Differences of two readings are what a measured window cost it.
 */
export function treeCpuSeconds(root: number): number {
  const ticks = new Map<number, { ppid: number; own: number; reaped: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // after the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14)
      ticks.set(Number(entry), { ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]) });
    } catch {
      // ended while /proc was read
    }
  }
  const tree = descendants(new Map([...ticks].map(([pid, t]) => [pid, { ppid: t.ppid, ticks: t.own }])), new Set([root]));
  tree.add(root);
  let total = 0;
  for (const pid of tree) {
    const t = ticks.get(pid);
    if (t) total += t.own + t.reaped;
  }
  return total / TICKS_PER_SECOND;
}

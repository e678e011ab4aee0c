import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Where the CPU time of a transfer goes, read from the kernel outside the
 * code measured: /proc/<pid>/stat for process trees (a server and every
 * process below it, including those it has reaped), cgroups for groups of
 * processes whose parents come and go (the ssh clients with their
 * ProxyCommands, which ssh leaves to init when it exits; a sandbox's
 * processes), and /proc/stat for the whole machine.
 */

/** Clock ticks per second of /proc's counters (USER_HZ); `getconf CLK_TCK` says 100 on every Linux in use. */
export let CLK_TCK = 100;

/** Sets the tick rate read from `getconf CLK_TCK`. */
export function setClockTicks(ticks: number): void {
  if (Number.isFinite(ticks) && ticks > 0) CLK_TCK = ticks;
}

interface ProcStat {
  ppid: number;
  /** utime + stime */
  own: number;
  /** cutime + cstime: children it has waited for */
  reaped: number;
}

function readStat(pid: number | string): ProcStat | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name is in parentheses and may itself hold spaces or parentheses
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // after the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14)
    return { ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined; // it ended meanwhile
  }
}

function allProcs(): Map<number, ProcStat> {
  const procs = new Map<number, ProcStat>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = readStat(entry);
    if (s) procs.set(Number(entry), s);
  }
  return procs;
}

/** Per process of a tree, its CPU seconds so far, its children's that it reaped included; keyed by pid. */
export function treeSeconds(root: number): Map<number, { comm: string; seconds: number }> {
  const procs = allProcs();
  const out = new Map<number, { comm: string; seconds: number }>();
  for (const [pid, s] of procs) {
    let p: number | undefined = pid;
    for (let depth = 0; p !== undefined && p > 1 && depth < 64; depth++) {
      if (p === root) {
        let comm = '?';
        try {
          comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
        } catch {
          // ended
        }
        out.set(pid, { comm, seconds: (s.own + s.reaped) / CLK_TCK });
        break;
      }
      p = procs.get(p)?.ppid;
    }
  }
  return out;
}

/** Whether `pid` has children now (a server still tearing down a session). */
export function hasChildren(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/task`).some((t) => readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim() !== '');
  } catch {
    return false;
  }
}

/**
 * The whole machine since boot, all CPUs: busy seconds (user + nice +
 * system) and steal, the time a virtual machine's CPUs waited for the
 * host, which gave them to another guest (0 on bare metal).
 */
export function machineSeconds(): { busy: number; steal: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return { busy: (f[0]! + f[1]! + f[2]!) / CLK_TCK, steal: (f[7] ?? 0) / CLK_TCK };
}

/** CPU seconds of this process itself (not its children). */
export function ownSeconds(): number {
  return readStat('self')!.own / CLK_TCK;
}

/**
 * The CPU-accounting file of the cgroup a process is in: cgroup v2's
 * `cpu.stat` (usage_usec) or v1's `cpuacct.usage` (ns). Undefined when
 * neither can be found.
 */
export function cgroupCpuFile(pid: number): string | undefined {
  let lines: string[];
  try {
    lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n');
  } catch {
    return undefined;
  }
  for (const line of lines) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (controllers === undefined || path === undefined) continue;
    if (controllers.split(',').includes('cpuacct')) {
      for (const mount of [controllers, 'cpuacct', 'cpu,cpuacct']) {
        const f = join('/sys/fs/cgroup', mount, path, 'cpuacct.usage');
        if (existsSync(f)) return f;
      }
    }
  }
  const v2 = lines.find((l) => l.startsWith('0::'));
  for (const base of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    const f = v2 ? join(base, v2.slice(3), 'cpu.stat') : undefined;
    if (f && existsSync(f)) return f;
  }
  return undefined;
}

/** CPU seconds so far of the cgroup whose accounting file is `file` (from `cgroupCpuFile` or `ClientGroup`). */
export function cgroupSeconds(file: string): number {
  const text = readFileSync(file, 'utf8');
  if (file.endsWith('cpuacct.usage')) return Number(text.trim()) / 1e9;
  return Number(/^usage_usec (\d+)$/m.exec(text)?.[1] ?? 0) / 1e6;
}

/**
 * A cgroup of its own for the ssh clients of the transfers: each client is
 * started through `sh -c 'echo $$ > cgroup.procs; exec ssh …'`, so it and
 * everything it starts (the ProxyCommand, which outlives ssh by a moment
 * and is reaped by init, not by anything here) are counted together.
 * cgroup v1's cpuacct hierarchy when mounted, else the v2 root.
 */
export interface ClientGroup {
  /** the file to write a pid into */
  procs: string;
  /** the accounting file for `cgroupSeconds` */
  cpu: string;
  remove(): void;
}

export function createClientGroup(name: string): ClientGroup | undefined {
  const candidates: Array<{ dir: string; cpu: string }> = [];
  if (existsSync('/sys/fs/cgroup/cpuacct/cpuacct.usage')) candidates.push({ dir: join('/sys/fs/cgroup/cpuacct', name), cpu: 'cpuacct.usage' });
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) candidates.push({ dir: join('/sys/fs/cgroup', name), cpu: 'cpu.stat' });
  for (const c of candidates) {
    try {
      mkdirSync(c.dir);
      const cpu = join(c.dir, c.cpu);
      if (!existsSync(cpu)) {
        rmdirSync(c.dir);
        continue;
      }
      return {
        procs: join(c.dir, 'cgroup.procs'),
        cpu,
        remove() {
          // processes still in it (none once every client has exited) would keep it; move them out first
          for (const pid of readFileSync(join(c.dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
            try {
              writeFileSync(join(c.dir, '..', 'cgroup.procs'), pid);
            } catch {
              // ended
            }
          }
          rmdirSync(c.dir);
        },
      };
    } catch {
      // no permission or no such hierarchy: try the next
    }
  }
  return undefined;
}

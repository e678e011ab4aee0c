import { readFileSync } from 'node:fs';

/**
 * CPU seconds by component during a phase, from /proc: this process (Atrium
 * and the benchmark's client, pod watcher included), the kubectl runs it
 * reaped, each control-plane process, and what the rest of the machine used.
 */

const TICKS = 100;

function stat(pid: number | 'self'): { own: number; reaped: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { own: (Number(f[11]) + Number(f[12])) / TICKS, reaped: (Number(f[13]) + Number(f[14])) / TICKS };
  } catch {
    return undefined;
  }
}

function machineBusy(): { busy: number; steal: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return { busy: (f[0]! + f[1]! + f[2]! + f[5]! + f[6]!) / TICKS, steal: (f[7] ?? 0) / TICKS };
}

export interface CpuSnapshot {
  at: number;
  machine: { busy: number; steal: number };
  self: { own: number; reaped: number };
  components: Record<string, number>;
}

export function cpuSnapshot(pids: Record<string, number>): CpuSnapshot {
  const components: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) {
    const s = stat(pid);
    if (s) components[name] = s.own + s.reaped;
  }
  return { at: performance.now(), machine: machineBusy(), self: stat('self') ?? { own: 0, reaped: 0 }, components };
}

export interface CpuUse {
  seconds: number;
  /** CPU seconds: node (this process: Atrium and the benchmark's client), kubectl (reaped children), and each control-plane process */
  by: Record<string, number>;
  /** average CPUs the machine spent outside all of the above */
  othersCpus: number;
  /** average CPUs the hypervisor gave to other guests */
  stealCpus: number;
}

export function cpuUse(a: CpuSnapshot, b: CpuSnapshot): CpuUse {
  const seconds = (b.at - a.at) / 1000;
  const by: Record<string, number> = { node: b.self.own - a.self.own, kubectl: b.self.reaped - a.self.reaped };
  for (const [name, v] of Object.entries(b.components)) by[name] = v - (a.components[name] ?? v);
  const accounted = Object.values(by).reduce((x, y) => x + y, 0);
  const busy = b.machine.busy - a.machine.busy;
  return {
    seconds,
    by,
    othersCpus: seconds > 0 ? Math.max(0, busy - accounted) / seconds : 0,
    stealCpus: seconds > 0 ? (b.machine.steal - a.machine.steal) / seconds : 0,
  };
}

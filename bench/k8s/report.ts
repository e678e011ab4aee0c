import type { CpuUse } from './cpu.js';

/** Targets for Atrium on Kubernetes, each against what was measured in the same run. */
export const TARGETS = {
  /** requests Atrium sends to the API server per workspace start, at most */
  requestsPerStart: 15,
  /** Atrium's requests per minute with every workspace running and idle, below */
  idleRequestsPerMinute: 60,
  /** Atrium's create→running p50 at most this times the floor's */
  p50VsFloor: 1.3,
};

export interface PhaseResult {
  system: 'atrium' | 'floor';
  label: string;
  workspaces: number;
  teams: number;
  /** per workspace, seconds from its request to running (Atrium: the phase event read from the API; floor: the pod Running and Ready) */
  each: number[];
  /** per workspace, seconds from its request to its pod first seen Running and Ready by the benchmark's own watch */
  podReady: number[];
  /** per workspace, seconds from its request to its pod first seen at all */
  podSeen: number[];
  /** per workspace, seconds from its pod first seen to bound to a node */
  podBind: number[];
  /** Atrium: per workspace, seconds from its pod Ready to Atrium's running event */
  afterReady: number[];
  /** Atrium: seconds of each create request (sent → answered) */
  createSeconds: number[];
  /** first request sent → last workspace running, seconds */
  wall: number;
  /** every request the API server counted during the phase, by all clients */
  apiserverRequests: number;
  apiserverBy: Record<string, number>;
  /** answers 429 Too Many Requests, and what API Priority and Fairness turned away (priority level / flow schema / reason) */
  tooMany: number;
  rejected: Record<string, number>;
  /** requests Atrium's runtime sent during the phase (null for the floor) */
  atriumRequests: number | null;
  /** workspaces that failed or never ran, with why */
  failures: string[];
  cpu: CpuUse;
  probeMs: number;
  /** floor: kubectl runs repeated */
  retries?: number;
}

export interface IdleResult {
  seconds: number;
  workspacesRunning: number;
  atriumRequests: number;
  perMinute: number;
  apiserverRequests: number;
  apiserverBy: Record<string, number>;
  tooMany: number;
  cpu: CpuUse;
}

export type Verdict = 'PASS' | 'MISS';
export interface TargetResult {
  name: string;
  figures: string;
  ratio: number | null;
  verdict: Verdict;
}

/** The q-quantile (nearest rank), NaN for none. */
export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '—');

export function table(header: string[], rows: string[][], right: (i: number) => boolean = (i) => i > 0): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (right(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function formatPhases(phases: PhaseResult[]): string {
  return table(
    ['phase', 'workspaces', 'teams', 'create answered p50', 'p99', 'p50 s', 'p99 s', 'max s', 'wall s', 'pod ready p50', 'pod ready p99', 'ready→running p50', 'p99', 'failed'],
    phases.map((p) => [
      p.label,
      String(p.workspaces),
      String(p.teams),
      p.system === 'atrium' ? f(quantile(p.createSeconds, 0.5)) : '—',
      p.system === 'atrium' ? f(quantile(p.createSeconds, 0.99)) : '—',
      f(quantile(p.each, 0.5)),
      f(quantile(p.each, 0.99)),
      f(Math.max(...p.each)),
      f(p.wall),
      f(quantile(p.podReady, 0.5)),
      f(quantile(p.podReady, 0.99)),
      p.system === 'atrium' ? f(quantile(p.afterReady, 0.5), 3) : '—',
      p.system === 'atrium' ? f(quantile(p.afterReady, 0.99), 3) : '—',
      String(p.failures.length),
    ]),
  );
}

export function formatRequests(phases: PhaseResult[], idle: IdleResult | undefined): string {
  const rows = phases.map((p) => [
    p.label,
    String(p.apiserverRequests),
    f(p.apiserverRequests / p.workspaces, 1),
    String(p.tooMany),
    p.atriumRequests === null ? '—' : String(p.atriumRequests),
    p.atriumRequests === null ? '—' : f(p.atriumRequests / p.workspaces, 2),
    f(p.cpu.by.node ?? 0, 1),
    f(p.cpu.by.kubectl ?? 0, 1),
    f(p.cpu.by['kube-apiserver'] ?? 0, 1),
    f(p.cpu.by.etcd ?? 0, 1),
    f((p.cpu.by['kube-controller-manager'] ?? 0) + (p.cpu.by['kube-scheduler'] ?? 0), 1),
    f(p.cpu.by.kwok ?? 0, 1),
    f(p.cpu.othersCpus),
    f(p.cpu.stealCpus),
    f(p.probeMs, 0),
  ]);
  if (idle) {
    rows.push([
      `idle ${idle.seconds} s, ${idle.workspacesRunning} running`,
      String(idle.apiserverRequests),
      '—',
      String(idle.tooMany),
      String(idle.atriumRequests),
      `${f(idle.perMinute, 1)}/min`,
      f(idle.cpu.by.node ?? 0, 1),
      f(idle.cpu.by.kubectl ?? 0, 1),
      f(idle.cpu.by['kube-apiserver'] ?? 0, 1),
      f(idle.cpu.by.etcd ?? 0, 1),
      f((idle.cpu.by['kube-controller-manager'] ?? 0) + (idle.cpu.by['kube-scheduler'] ?? 0), 1),
      f(idle.cpu.by.kwok ?? 0, 1),
      f(idle.cpu.othersCpus),
      f(idle.cpu.stealCpus),
      '—',
    ]);
  }
  return table(
    ['phase', 'apiserver req', 'per ws', '429s', 'Atrium req', 'per start', 'node CPU-s', 'kubectl', 'apiserver', 'etcd', 'kcm+sched', 'kwok', "others' CPUs", 'steal', 'probe ms'],
    rows,
  );
}

/** The verb/resource pairs that made up most of a phase's API server requests. */
export function topRequests(by: Record<string, number>, n = 8): string {
  return Object.entries(by)
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}

export function evaluate(phases: PhaseResult[], idle: IdleResult | undefined): TargetResult[] {
  const out: TargetResult[] = [];
  for (const p of phases.filter((x) => x.system === 'atrium')) {
    const per = (p.atriumRequests ?? NaN) / p.workspaces;
    out.push({ name: `Atrium requests per start ≤ ${TARGETS.requestsPerStart} (${p.workspaces})`, figures: `${f(per, 2)} per start`, ratio: per / TARGETS.requestsPerStart, verdict: per <= TARGETS.requestsPerStart ? 'PASS' : 'MISS' });
  }
  if (idle) {
    out.push({ name: `idle Atrium requests < ${TARGETS.idleRequestsPerMinute}/min (${idle.workspacesRunning} running)`, figures: `${f(idle.perMinute, 1)}/min`, ratio: idle.perMinute / TARGETS.idleRequestsPerMinute, verdict: idle.perMinute < TARGETS.idleRequestsPerMinute ? 'PASS' : 'MISS' });
  }
  for (const p of phases.filter((x) => x.system === 'atrium')) {
    const floor = phases.find((x) => x.system === 'floor' && x.workspaces === p.workspaces);
    if (!floor) continue;
    const a = quantile(p.each, 0.5);
    const b = quantile(floor.each, 0.5);
    // a step where workspaces did not run put less on the cluster than the floor's: its times cannot pass
    const lost = p.failures.length ? `, ${p.failures.length} did not run` : '';
    out.push({ name: `create→running p50 ≤ ${TARGETS.p50VsFloor}× the floor's (${p.workspaces})`, figures: `${f(a)} vs ${f(b)} s${lost}`, ratio: a / b, verdict: a / b <= TARGETS.p50VsFloor && !lost ? 'PASS' : 'MISS' });
  }
  return out;
}

export function formatRatios(phases: PhaseResult[]): string {
  const rows: string[][] = [];
  for (const p of phases.filter((x) => x.system === 'atrium')) {
    const floor = phases.find((x) => x.system === 'floor' && x.workspaces === p.workspaces);
    if (!floor) continue;
    rows.push([
      `${p.workspaces} in ${p.teams} teams`,
      `${f(quantile(p.each, 0.5) / quantile(floor.each, 0.5))}×`,
      `${f(quantile(p.each, 0.99) / quantile(floor.each, 0.99))}×`,
      `${f(p.wall / floor.wall)}×`,
      `${f(p.apiserverRequests / floor.apiserverRequests)}×`,
    ]);
  }
  return table(['Atrium / floor', 'p50', 'p99', 'wall', 'apiserver requests'], rows);
}

export function formatTargets(targets: TargetResult[]): string {
  return table(
    ['target', 'this run', 'ratio', 'verdict'],
    targets.map((t) => [t.name, t.figures, t.ratio === null ? '—' : `${f(t.ratio)}×`, t.verdict]),
    (i) => i === 2,
  );
}

/** Failures grouped by their reason, names of teams, workspaces and namespaces masked, most frequent first. */
export function groupFailures(phases: PhaseResult[]): string[] {
  const out: string[] = [];
  for (const p of phases) {
    if (p.failures.length === 0) continue;
    const counts = new Map<string, number>();
    for (const failure of p.failures) {
      const reason = failure
        .replace(/^[a-z0-9-]+\/[a-z0-9-]+: (failed: )?/, '')
        .replace(/atrium-[a-z0-9]+-t\d+/g, 'NS')
        .replace(/\bws-\d+/g, 'WS')
        .replace(/\?[^: ]*/g, '')
        .trim();
      counts.set(reason, (counts.get(reason) ?? 0) + 1);
    }
    out.push(`${p.label}: ${p.failures.length} of ${p.workspaces} workspaces did not run:`);
    for (const [reason, n] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, 12)) out.push(`  ${String(n).padStart(5)}  ${reason.slice(0, 160)}`);
  }
  return out;
}

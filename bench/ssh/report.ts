import type { PathId } from './ssh.js';

/** Targets from issue 14, each against an anchor measured in the same run. */
export const TARGETS = {
  /** gateway throughput at least the bastion's (×) */
  gatewayThroughputVsBastion: 1,
  /** gateway setup at most this times the bastion's */
  gatewaySetupVsBastion: 1.5,
  /** tunnel throughput at least this share of direct's */
  tunnelThroughputVsDirect: 0.6,
  /** tunnel setup at most this times direct's */
  tunnelSetupVsDirect: 1.3,
};

/** What the issue measured on the reference machine, to tell a slow run from a broken anchor. */
export const REFERENCE = {
  direct: { mbps: [490, 550], setup: 0.21 },
  bastion: { mbps: [180, 200], setup: 0.38 },
} as const;

export type Direction = 'up' | 'down';

/** CPU seconds per GiB carried, each side; null where it does not apply or could not be read. */
export interface CpuPerGiB {
  /** ssh and its ProxyCommand (the benchmark's cgroup for clients) */
  client: number | null;
  /** `atrium serve` and its children (the relay): the node process and the relay apart, and their sum */
  controlPlane: { node: number; relay: number; total: number } | null;
  /** where the shell is: the host sshd's tree (direct, bastion: the jump sshd too), or the workspace's sandbox */
  server: number | null;
  /** the machine's busy time not accounted for above, as average CPUs during the transfer */
  othersCpus: number | null;
  /** CPUs the hypervisor took away meanwhile (steal), as average CPUs during the transfer */
  stealCpus: number;
}

export interface Transfer {
  direction: Direction;
  bytes: number;
  /** spawn to exit of the ssh process */
  seconds: number;
  /** bytes / (seconds − the path's median setup) / 1e6: the data phase alone */
  mbps: number;
  /** bytes / seconds / 1e6, setup included */
  grossMbps: number;
  cpu: CpuPerGiB;
  /** the host probe right before the round this transfer was in */
  probeMs: number;
}

export interface PathResult {
  id: PathId;
  label: string;
  negotiated: { cipher: string; mac: string; kex: string };
  /** seconds of each `ssh … true` */
  setups: number[];
  transfers: Transfer[];
  /** connections whose channel closed without an exit status (ssh exits 255 after the command ran) */
  lostExitStatus: number;
}

export type Verdict = 'PASS' | 'MISS';

export interface TargetResult {
  name: string;
  /** what was compared, e.g. "96 vs 185 MB/s" */
  figures: string;
  ratio: number;
  verdict: Verdict;
}

export const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** The median of a field over one direction's transfers (NaN when there are none or the field is unknown). */
export function transferMedian(p: PathResult, direction: Direction, pick: (t: Transfer) => number | null | undefined): number {
  const xs = p.transfers.filter((t) => t.direction === direction).map(pick).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return median(xs);
}

const fmt = (v: number, digits = 0) => (Number.isFinite(v) ? v.toFixed(digits) : '—');

/** Fixed-width columns; `right` lists the columns aligned right. */
function table(head: string[], body: string[][], right: Set<number>): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** Setup and throughput per path. */
export function formatMain(paths: PathResult[]): string {
  const head = ['path', 'setup s p50', 'min–max', 'upload MB/s', 'download MB/s', 'cipher (client → first hop)', 'kex'];
  const body = paths.map((p) => [
    p.label,
    fmt(median(p.setups), 3),
    p.setups.length ? `${fmt(Math.min(...p.setups), 3)}–${fmt(Math.max(...p.setups), 3)}` : '—',
    fmt(transferMedian(p, 'up', (t) => t.mbps)),
    fmt(transferMedian(p, 'down', (t) => t.mbps)),
    p.negotiated.mac === '<implicit>' ? p.negotiated.cipher : `${p.negotiated.cipher} + ${p.negotiated.mac}`,
    p.negotiated.kex,
  ]);
  return table(head, body, new Set([1, 2, 3, 4]));
}

/** CPU per GiB carried, per path and direction. */
export function formatCpu(paths: PathResult[]): string {
  const head = ['path', 'dir', 'client', 'control plane', '(node + relay)', 'server side', 'total', "others' CPUs", 'steal', 'probe ms'];
  const body: string[][] = [];
  for (const p of paths) {
    for (const d of ['up', 'down'] as const) {
      if (!p.transfers.some((t) => t.direction === d)) continue;
      const client = transferMedian(p, d, (t) => t.cpu.client);
      const cp = transferMedian(p, d, (t) => t.cpu.controlPlane?.total);
      const node = transferMedian(p, d, (t) => t.cpu.controlPlane?.node);
      const relay = transferMedian(p, d, (t) => t.cpu.controlPlane?.relay);
      const server = transferMedian(p, d, (t) => t.cpu.server);
      const total = [client, cp, server].filter(Number.isFinite).reduce((a, b) => a + b, 0);
      body.push([
        p.label,
        d,
        fmt(client, 2),
        fmt(cp, 2),
        Number.isFinite(cp) ? `${fmt(node, 2)} + ${fmt(relay, 2)}` : '—',
        fmt(server, 2),
        fmt(total, 2),
        fmt(transferMedian(p, d, (t) => t.cpu.othersCpus), 2),
        fmt(transferMedian(p, d, (t) => t.cpu.stealCpus), 2),
        fmt(transferMedian(p, d, (t) => t.probeMs)),
      ]);
    }
  }
  return table(head, body, new Set([2, 3, 5, 6, 7, 8, 9]));
}

/** The four targets (throughput each way), against the anchors of this run. */
export function evaluateTargets(byId: Partial<Record<PathId, PathResult>>): TargetResult[] {
  const out: TargetResult[] = [];
  const { direct, bastion, gateway, tunnel } = byId;
  const throughput = (name: string, p: PathResult | undefined, anchor: PathResult | undefined, atLeast: number) => {
    if (!p || !anchor) return;
    for (const d of ['up', 'down'] as const) {
      const [a, b] = [transferMedian(p, d, (t) => t.mbps), transferMedian(anchor, d, (t) => t.mbps)];
      if (!Number.isFinite(a) || !Number.isFinite(b)) continue;
      out.push({ name: `${name} (${d === 'up' ? 'upload' : 'download'})`, figures: `${fmt(a)} vs ${fmt(b)} MB/s`, ratio: a / b, verdict: a / b >= atLeast ? 'PASS' : 'MISS' });
    }
  };
  const setup = (name: string, p: PathResult | undefined, anchor: PathResult | undefined, atMost: number) => {
    if (!p || !anchor) return;
    const [a, b] = [median(p.setups), median(anchor.setups)];
    if (!Number.isFinite(a) || !Number.isFinite(b)) return;
    out.push({ name, figures: `${fmt(a, 3)} vs ${fmt(b, 3)} s`, ratio: a / b, verdict: a / b <= atMost ? 'PASS' : 'MISS' });
  };
  throughput(`gateway throughput ≥ bastion's`, gateway, bastion, TARGETS.gatewayThroughputVsBastion);
  setup(`gateway setup ≤ ${TARGETS.gatewaySetupVsBastion}× bastion's`, gateway, bastion, TARGETS.gatewaySetupVsBastion);
  throughput(`tunnel throughput ≥ ${TARGETS.tunnelThroughputVsDirect * 100}% of direct`, tunnel, direct, TARGETS.tunnelThroughputVsDirect);
  setup(`tunnel setup ≤ ${TARGETS.tunnelSetupVsDirect}× direct`, tunnel, direct, TARGETS.tunnelSetupVsDirect);
  return out;
}

export function formatTargets(targets: TargetResult[]): string {
  if (targets.length === 0) return '(no targets: an anchor or Atrium was left out)';
  return table(['target', 'this run', 'ratio', 'verdict'], targets.map((t) => [t.name, t.figures, `${t.ratio.toFixed(2)}×`, t.verdict]), new Set([2]));
}

/** Notes on anchors outside what the issue measured on the reference machine: the targets judge ratios to this run's anchors, not those figures. */
export function referenceNotes(byId: Partial<Record<PathId, PathResult>>): string[] {
  const notes: string[] = [];
  for (const id of ['direct', 'bastion'] as const) {
    const p = byId[id];
    if (!p) continue;
    const ref = REFERENCE[id];
    const up = transferMedian(p, 'up', (t) => t.mbps);
    const s = median(p.setups);
    const out: string[] = [];
    if (Number.isFinite(up) && (up < ref.mbps[0] * 0.9 || up > ref.mbps[1] * 1.1)) out.push(`uploaded at ${fmt(up)} MB/s (issue: ${ref.mbps[0]}–${ref.mbps[1]})`);
    if (Number.isFinite(s) && (s > ref.setup * 1.3 || s < ref.setup / 1.3)) out.push(`set up in ${fmt(s, 3)} s (issue: ${ref.setup} s)`);
    if (out.length > 0) notes.push(`${id} ${out.join(' and ')}: this machine or its load differs from the issue's measurement; the targets compare with this run's anchors.`);
  }
  return notes;
}

/** Connections that lost their exit status, per path: a fault of its own, though not one of the timing targets. */
export function lostExitNotes(paths: PathResult[]): string[] {
  return paths
    .filter((p) => p.lostExitStatus > 0)
    .map((p) => {
      const n = 1 + p.setups.length + p.transfers.length;
      return `${p.label}: ${p.lostExitStatus} of ${n} connections ended without the command's exit status (ssh: "Exit status -1", status 255); their times are counted, as the command had run.`;
    });
}

import type { CallResult } from '../lib/load.js';

/** Targets from the issue that asked for this benchmark. */
export const TARGETS = {
  /** p99 of each read at full size, ms */
  readP99Ms: 20,
};

/** The host probe (`hostProbeMs`) on the reference machine when its host was calm, ms. */
export const PROBE_REFERENCE_MS = '130–140';

/** What JupyterHub did on the reference machine (10,000 users, 16 connections), to tell a sick anchor from a healthy one. */
export const HUB_REFERENCE: Record<string, string> = {
  'get-user': '311–402 req/s, p99 58–79 ms',
  'users-page': '~150 req/s, p99 132–158 ms',
};

/** The lowest rate of JupyterHub's get-user on the reference machine: below it, the machine ran slower than the reference during the run. */
export const HUB_REFERENCE_GET_USER_MIN_RPS = 311;

export type Verdict = 'PASS' | 'MISS';

export interface Row {
  systemId: string;
  system: string;
  call: string;
  description: string;
  result: CallResult;
  /** CPUs other processes on the machine used during the call, when known */
  otherCpus: number | null;
  /** the host probe's time right before the call, ms (lower is a faster machine) */
  probeMs: number;
  anchor: {
    call: string;
    /** this rps / anchor rps: above 1 is faster */
    rpsRatio: number;
    /** this p99 / anchor p99: below 1 is faster */
    p99Ratio: number;
  } | null;
  targets: { p99: Verdict; fasterThanAnchor: Verdict | null } | null;
}

const ms = (v: number) => (v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0));
const rps = (v: number) => v.toFixed(0);

function vsAnchor(r: Row): string {
  if (r.systemId === 'jupyterhub') return 'anchor';
  if (!r.anchor) return r.targets ? 'no anchor measured' : 'no JupyterHub equivalent';
  return `${r.anchor.rpsRatio.toFixed(1)}× req/s, p99 ${r.anchor.p99Ratio.toFixed(2)}× (${r.anchor.call})`;
}

/** The results as a fixed-width table, one row per system and call. */
export function formatTable(rows: Row[]): string {
  const head = ['system', 'call', 'req/s', 'p50 ms', 'p99 ms', 'vs JupyterHub in this run', `p99<${TARGETS.readP99Ms}ms`, 'beats JH', 'errors', "others' CPU", 'probe ms'];
  const right = new Set([2, 3, 4, 8, 9, 10]);
  const body = rows.map((r) => [
    r.system,
    r.call,
    rps(r.result.rps),
    ms(r.result.p50Ms),
    ms(r.result.p99Ms),
    vsAnchor(r),
    r.targets?.p99 ?? '—',
    r.targets?.fasterThanAnchor ?? '—',
    String(r.result.errors),
    r.otherCpus === null ? '?' : r.otherCpus.toFixed(2),
    r.probeMs.toFixed(0),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

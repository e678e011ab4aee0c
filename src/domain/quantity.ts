/**
 * Kubernetes quantities (`500m`, `2`, `1.5`, `4Gi`, `1e9`). Every size in
 * config, API, messages and the portal is one of these. Internally CPU is
 * held in millicores and memory/storage in bytes, both integers.
 */
const MULTIPLIER: Record<string, number> = {
  n: 1e-9, u: 1e-6, m: 1e-3, '': 1,
  k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

export const QUANTITY_PATTERN =
  '^(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)(?:Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$';
const QUANTITY_RE = new RegExp(QUANTITY_PATTERN);

function parse(q: string): number | undefined {
  if (!QUANTITY_RE.test(q)) return undefined;
  const m = /^([0-9.]+)(.*)$/.exec(q)!;
  const value = Number(m[1]);
  const suffix = m[2]!;
  const mult = suffix.startsWith('e') || suffix.startsWith('E') ? 10 ** Number(suffix.slice(1)) : MULTIPLIER[suffix];
  if (mult === undefined || !Number.isFinite(value)) return undefined;
  const out = value * mult;
  return Number.isFinite(out) ? out : undefined;
}

/** CPU quantity → millicores, rounded up as Kubernetes does; undefined if invalid or beyond 2^53. */
export function parseCpu(q: string): number | undefined {
  const v = parse(q);
  if (v === undefined) return undefined;
  const milli = Math.ceil(Math.round(v * 1e6) / 1e3);
  return Number.isSafeInteger(milli) ? milli : undefined;
}

/** Memory/storage quantity → bytes, rounded up; undefined if invalid or beyond 2^53. */
export function parseBytes(q: string): number | undefined {
  const v = parse(q);
  if (v === undefined) return undefined;
  const bytes = Math.ceil(v - 1e-9);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

export function formatCpu(milli: number): string {
  if (milli % 1000 === 0) return String(milli / 1000);
  return `${milli}m`;
}

const BINARY: Array<[string, number]> = [
  ['Ei', 2 ** 60], ['Pi', 2 ** 50], ['Ti', 2 ** 40], ['Gi', 2 ** 30], ['Mi', 2 ** 20], ['Ki', 2 ** 10],
];

/** Bytes for people: exact where a binary suffix divides them (`6Gi`), else rounded in the largest unit that fits (`1.86Gi`). */
export function formatBytesApprox(bytes: number): string {
  const exact = formatBytes(bytes);
  if (!/^[0-9]+$/.test(exact) || bytes < 1024) return exact;
  const [suffix, size] = BINARY.find(([, s]) => bytes >= s)!;
  return `${Number((bytes / size).toFixed(2))}${suffix}`;
}

/** Bytes → the largest binary suffix that divides exactly (`6Gi`, `1536Mi`), else plain bytes. */
export function formatBytes(bytes: number): string {
  if (bytes === 0) return '0';
  for (const [suffix, size] of BINARY) {
    if (bytes % size === 0) return `${bytes / size}${suffix}`;
  }
  return String(bytes);
}

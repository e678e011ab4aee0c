import { formatBytesApprox } from '../../src/domain/index.ts';
import type { WorkspaceView } from './api/types.ts';

const UNITS: Array<[Intl.RelativeTimeFormatUnit, number]> = [
  ['year', 365 * 86400],
  ['month', 30 * 86400],
  ['week', 7 * 86400],
  ['day', 86400],
  ['hour', 3600],
  ['minute', 60],
];
const rtf = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

/** "3 minutes ago", "yesterday"; "just now" under a minute. */
export function ago(iso: string | null, now = Date.now()): string {
  if (!iso) return '—';
  const seconds = Math.round((Date.parse(iso) - now) / 1000);
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) return rtf.format(Math.round(seconds / size), unit);
  }
  return 'just now';
}

export function dateTime(iso: string | null): string {
  if (!iso) return '—';
  return new Date(iso).toLocaleString('en', { dateStyle: 'medium', timeStyle: 'short' });
}

/** "2 CPU · 8Gi · 1× a100 · 20Gi disk": what a workspace may use (its limits), in the API's units. */
export function resources(r: WorkspaceView['resources']): string {
  const parts = [`${r.cpu.limit} CPU`, `${r.memory.limit} memory`];
  if (r.gpu) parts.push(`${r.gpu.count}× ${r.gpu.type} GPU`);
  parts.push(`${r.storage} disk`);
  return parts.join(' · ');
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en')} ${n === 1 ? one : many}`;
}

/** Bytes as a quantity: exact where it can be (`6Gi`), else rounded in the largest unit that fits (`1.86Gi`). */
export const bytes = formatBytesApprox;

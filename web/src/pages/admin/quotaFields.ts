import { parseBytes, parseCpu } from '../../../../src/domain/index.ts';
import type { Quota, QuotaChange } from '../../api/types.ts';

/** A team quota as typed into a form: Kubernetes quantities, a count, and GPUs as `type=count` pairs. */
export interface QuotaFields {
  cpu: string;
  memory: string;
  storage: string;
  workspaces: string;
  gpu: string;
}

export type QuotaErrors = Partial<Record<keyof QuotaFields, string>>;

export const EMPTY_QUOTA: QuotaFields = { cpu: '', memory: '', storage: '', workspaces: '', gpu: '' };

const GPU_TYPE = /^[a-z0-9][a-z0-9.-]{0,62}$/;
const MAX_COUNT = 100000;

/** "a100=2, t4=1" for `{ a100: 2, t4: 1 }`, types in order. */
export function gpuText(gpu: Record<string, number>): string {
  return Object.keys(gpu)
    .sort()
    .map((t) => `${t}=${gpu[t]}`)
    .join(', ');
}

/** `type=count` pairs separated by commas or spaces; an error names the first pair that is not one. */
function parseGpus(text: string): { gpu: Record<string, number> } | { error: string } {
  const gpu: Record<string, number> = {};
  for (const pair of text.split(/[\s,;]+/).filter(Boolean)) {
    const m = /^([^=]+)=([0-9]+)$/.exec(pair);
    if (!m) return { error: `"${pair}" is not type=count, e.g. a100=2.` };
    const type = m[1]!.toLowerCase();
    const count = Number(m[2]);
    if (!GPU_TYPE.test(type)) return { error: `"${type}" is not a GPU type: lowercase letters, digits, '.' and '-'.` };
    if (count > MAX_COUNT) return { error: `${type}: at most ${MAX_COUNT.toLocaleString('en')} GPUs.` };
    if (type in gpu) return { error: `${type} is listed twice.` };
    gpu[type] = count;
  }
  return { gpu };
}

export function quotaToFields(q: Quota): QuotaFields {
  return { cpu: q.cpu, memory: q.memory, storage: q.storage, workspaces: String(q.workspaces), gpu: gpuText(q.gpu) };
}

/**
 * Checks the fields and returns what they ask for: only the filled ones, so
 * the rest keep their value (the platform default for a new team, the
 * current quota when editing). `required` fields may not be left empty.
 */
export function readQuota(fields: QuotaFields, required = false): { change: QuotaChange; errors: QuotaErrors } {
  const change: QuotaChange = {};
  const errors: QuotaErrors = {};
  const cpu = fields.cpu.trim();
  const memory = fields.memory.trim();
  const storage = fields.storage.trim();
  const workspaces = fields.workspaces.trim();
  const gpu = fields.gpu.trim();
  if (cpu) {
    if (parseCpu(cpu) === undefined) errors.cpu = 'A CPU quantity, e.g. 8 or 500m.';
    else change.cpu = cpu;
  } else if (required) errors.cpu = 'Enter a CPU quantity, e.g. 8.';
  if (memory) {
    if (parseBytes(memory) === undefined) errors.memory = 'A size, e.g. 32Gi or 512Mi.';
    else change.memory = memory;
  } else if (required) errors.memory = 'Enter a size, e.g. 32Gi.';
  if (storage) {
    if (parseBytes(storage) === undefined) errors.storage = 'A size, e.g. 500Gi or 1Ti.';
    else change.storage = storage;
  } else if (required) errors.storage = 'Enter a size, e.g. 500Gi.';
  if (workspaces) {
    if (!/^[0-9]+$/.test(workspaces) || Number(workspaces) > MAX_COUNT) errors.workspaces = `A whole number from 0 to ${MAX_COUNT.toLocaleString('en')}.`;
    else change.workspaces = Number(workspaces);
  } else if (required) errors.workspaces = 'Enter a number of workspaces.';
  // an emptied GPU list when editing means "no GPUs"; for a new team, the default
  if (gpu || required) {
    const parsed = parseGpus(gpu);
    if ('error' in parsed) errors.gpu = parsed.error;
    else change.gpu = parsed.gpu;
  }
  return { change, errors };
}

/** The part of `change` that differs from `current` (`8` and `8000m` are the same CPU), so an edit sends only what moved. */
export function changedQuota(change: QuotaChange, current: Quota): QuotaChange {
  const out: QuotaChange = {};
  if (change.cpu !== undefined && parseCpu(change.cpu) !== parseCpu(current.cpu)) out.cpu = change.cpu;
  if (change.memory !== undefined && parseBytes(change.memory) !== parseBytes(current.memory)) out.memory = change.memory;
  if (change.storage !== undefined && parseBytes(change.storage) !== parseBytes(current.storage)) out.storage = change.storage;
  if (change.workspaces !== undefined && change.workspaces !== current.workspaces) out.workspaces = change.workspaces;
  if (change.gpu !== undefined && gpuText(withoutZeros(change.gpu)) !== gpuText(withoutZeros(current.gpu))) out.gpu = change.gpu;
  return out;
}

function withoutZeros(gpu: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(gpu).filter(([, n]) => n > 0));
}

/** One line for a table: "8 CPU · 32Gi memory · 500Gi storage · 10 workspaces". */
export function quotaSummary(q: Quota): string {
  return [`${q.cpu} CPU`, `${q.memory} memory`, `${q.storage} storage`, q.workspaces === 1 ? '1 workspace' : `${q.workspaces.toLocaleString('en')} workspaces`].join(' · ');
}

/** GPUs a quota allows: "2× a100, 1× t4", or undefined when none. */
export function gpuSummary(gpu: Record<string, number>): string | undefined {
  const types = Object.keys(gpu)
    .filter((t) => (gpu[t] ?? 0) > 0)
    .sort();
  return types.length ? types.map((t) => `${gpu[t]}× ${t}`).join(', ') : undefined;
}

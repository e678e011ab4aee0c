/** What the audit log can be narrowed to; kept in the page's address so a filtered view can be linked. */
export interface AuditFilters {
  actor?: string;
  action?: string;
  target?: string;
  result?: string;
  /** RFC 3339 */
  since?: string;
  /** RFC 3339 */
  until?: string;
}

export const FILTER_KEYS = ['actor', 'action', 'target', 'result', 'since', 'until'] as const satisfies ReadonlyArray<keyof AuditFilters>;

export function readFilters(params: URLSearchParams): AuditFilters {
  const out: AuditFilters = {};
  for (const key of FILTER_KEYS) {
    const value = params.get(key)?.trim();
    if (value) out[key] = value;
  }
  return out;
}

/** `?actor=jane&action=workspace.`, or '' for no filter. */
export function filtersSearch(filters: AuditFilters): string {
  const params = new URLSearchParams();
  for (const key of FILTER_KEYS) {
    const value = filters[key];
    if (value) params.set(key, value);
  }
  const s = params.toString();
  return s ? `?${s}` : '';
}

const pad = (n: number) => String(n).padStart(2, '0');

/** An RFC 3339 time as a `datetime-local` value in this browser's time zone ('' if it is not a time). */
export function toLocalInput(iso: string | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A `datetime-local` value (this browser's time zone) as RFC 3339 in UTC; undefined when empty or not a time. */
export function fromLocalInput(local: string): string | undefined {
  if (!local) return undefined;
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

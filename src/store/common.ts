import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { type EventEmitter } from 'node:events';
import { sql, type Compilable, type ExpressionBuilder, type Kysely, type Transaction } from 'kysely';
import { InvalidInput } from '../domain/index.js';
import type { Dialect, RawAll } from './db.js';
import type { Database } from './schema.js';

export type Executor = Kysely<Database> | Transaction<Database>;

/** A workspace or team event as stored and streamed. */
export interface StoredEvent {
  id: number;
  teamId: string;
  workspaceId: string | null;
  type: string;
  message: string;
  data: Record<string, unknown>;
  createdAt: number;
}

export type NewEvent = Omit<StoredEvent, 'id' | 'createdAt'>;

/**
 * Shared by every repository: the database, its dialect, and the in-process
 * bus on which committed events are published (after commit, never before, so
 * a listener never sees a change that was rolled back).
 */
export interface StoreContext {
  db: Kysely<Database>;
  dialect: Dialect;
  bus: EventEmitter;
  now: () => number;
  /** list queries read rows as arrays: about half the cost of row objects */
  raw: RawAll;
  /** tells other control planes on the same database that access changed (PostgreSQL) */
  announceAccess?: () => void;
}

/** Tells caches of identities and roles, here and in other control planes on the database, that who-may-do-what changed. */
export function accessChanged(ctx: StoreContext): void {
  ctx.bus.emit('access');
  ctx.announceAccess?.();
}

/** Tells listeners that a team was made, changed or deleted, or its members changed (what a runtime made for it may be stale). */
export function teamsChanged(ctx: StoreContext): void {
  ctx.bus.emit('teams');
  accessChanged(ctx);
}

/** One audit row as written; `at` is set by the writer. */
export interface AuditRow {
  actorId: string | null;
  actor: string;
  action: string;
  target: string;
  result: string;
  status: number;
  ip: string;
  details: Record<string, unknown>;
}

export async function insertAudit(db: Executor, e: AuditRow, now: number): Promise<number> {
  const row = await db
    .insertInto('audit')
    .values({ at: now, actor_id: e.actorId, actor: e.actor, action: e.action, target: e.target, result: e.result, status: e.status, ip: e.ip, details: JSON.stringify(e.details) })
    .returning('id')
    .executeTakeFirstOrThrow();
  return Number(row.id);
}

/** The audit row of the request a change is made for (the API sets it; background work has none). */
export interface AuditScope {
  row(): { actorId: string | null; actor: string; action: string; target: string; status: number; ip: string };
  /** set once the row is written, so it is written once */
  writtenId: number | undefined;
}

/**
 * Lets the first transaction of a request write the request's audit row
 * inside itself: a change and its audit row commit together, and a crash can
 * never keep one without the other.
 */
export const auditScope = new AsyncLocalStorage<AuditScope>();

export interface Tx {
  db: Transaction<Database>;
  /** Records an event in this transaction; it is published once the transaction commits. */
  event(e: NewEvent): Promise<StoredEvent>;
}

export async function insertEvent(db: Executor, e: NewEvent, now: number): Promise<StoredEvent> {
  const row = await db
    .insertInto('events')
    .values({
      team_id: e.teamId,
      workspace_id: e.workspaceId,
      type: e.type,
      message: e.message,
      data: JSON.stringify(e.data),
      created_at: now,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return { ...e, id: Number(row.id), createdAt: now };
}

export async function transaction<T>(ctx: StoreContext, fn: (tx: Tx) => Promise<T>): Promise<T> {
  const pending: StoredEvent[] = [];
  const lockedTeams = new Set<string>();
  const scope = auditScope.getStore();
  let auditId: number | undefined;
  const result = await ctx.db.transaction().execute(async (trx) => {
    const out = await fn({
      db: trx,
      event: async (e) => {
        // PostgreSQL hands out sequence values at insert, not at commit: holding a per-team lock
        // from the first event to the commit makes a team's event ids commit in order, so a
        // stream resuming after Last-Event-ID can never skip one that committed late.
        if (ctx.dialect === 'postgres' && !lockedTeams.has(e.teamId)) {
          await sql`select pg_advisory_xact_lock(hashtext(${e.teamId}))`.execute(trx);
          lockedTeams.add(e.teamId);
        }
        const stored = await insertEvent(trx, e, ctx.now());
        pending.push(stored);
        return stored;
      },
    });
    if (scope && scope.writtenId === undefined) {
      auditId = await insertAudit(trx, { ...scope.row(), result: 'ok', details: {} }, ctx.now());
    }
    return out;
  });
  if (scope && auditId !== undefined) scope.writtenId = auditId;
  for (const e of pending) ctx.bus.emit('event', e);
  return result;
}

export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('base64url')}`;
}

/** Opaque pagination cursors: the last item's sort key. */
export function encodeCursor(key: string | number): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

export function decodeCursor<T extends string | number>(cursor: string | undefined, kind: 'string' | 'number'): T | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (typeof value === kind) return value as T;
  } catch {
    // fall through to the refusal below
  }
  throw new InvalidInput('cursor: not a cursor returned by this list');
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** SQL and its parameters, ready to run. */
export interface SqlText {
  sql: string;
  parameters: readonly unknown[];
}

/**
 * A query compiled once per shape and run with new values each time:
 * building and compiling a list query with Kysely costs about 50 µs, a tenth
 * of serving a page of 50. `build` gets the shape (which filters apply, the
 * limit: everything that changes the SQL text) and stand-ins for the string
 * values, texts no input can hold, which Kysely carries into the parameters
 * untouched; each run puts the real values in their places. Values reach the
 * query only through `build`'s second argument, so none of one call's can be
 * kept in the SQL reused for the next.
 */
export function compiledByShape<S extends Record<string, boolean | number>, V extends Record<string, string>>(
  names: readonly (keyof V & string)[],
  build: (shape: S, values: V) => Compilable,
): (shape: S, values: Partial<V>) => SqlText {
  const standIns = new Map<string, keyof V & string>(names.map((n) => [`\u0000${n}\u0000`, n]));
  const stand = Object.fromEntries([...standIns].map(([text, n]) => [n, text])) as V;
  const compiled = new Map<string, { sql: string; parameters: readonly unknown[]; slots: [number, keyof V & string][] }>();
  return (shape, values) => {
    const key = JSON.stringify(shape);
    let t = compiled.get(key);
    if (!t) {
      const c = build(shape, stand).compile();
      if (c.sql.includes('\u0000')) throw new Error('a value was written into the SQL text instead of a parameter');
      const slots: [number, keyof V & string][] = [];
      c.parameters.forEach((p, i) => {
        const n = typeof p === 'string' ? standIns.get(p) : undefined;
        if (n !== undefined) slots.push([i, n]);
      });
      // shapes are few (flags and a bounded limit); the bound only guards against a caller that varies them freely
      if (compiled.size >= 1_000) compiled.clear();
      t = { sql: c.sql, parameters: c.parameters, slots };
      compiled.set(key, t);
    }
    const parameters = t.parameters.slice();
    for (const [i, n] of t.slots) {
      const v = values[n];
      if (v === undefined) throw new Error(`query value ${n} is missing`);
      parameters[i] = v;
    }
    return { sql: t.sql, parameters };
  };
}

export function page<T>(rows: T[], limit: number, key: (row: T) => string | number): Page<T> {
  const more = rows.length > limit;
  const items = more ? rows.slice(0, limit) : rows;
  return { items, nextCursor: more ? encodeCursor(key(items.at(-1)!)) : null };
}

export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/**
 * The SQL twin of `chargesCompute` (design §5): a workspace holds its CPU,
 * memory and GPU limits while the runtime reports it starting, running or
 * stopping, or while it is asked to run and not yet picked up.
 */
export function holdsCompute(eb: ExpressionBuilder<Database, 'workspaces'>) {
  return eb.or([
    eb('workspaces.phase', 'in', ['starting', 'running', 'stopping', 'unknown']),
    eb.and([eb('workspaces.desired', '=', 'running'), eb('workspaces.phase', '=', 'pending')]),
  ]);
}

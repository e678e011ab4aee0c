import { sql } from 'kysely';
import { createStore, type DatabaseTarget } from '../../src/store/index.js';
import type { Plan } from './plan.js';

/**
 * Most bound parameters one statement may carry: SQLite allows 32,766,
 * PostgreSQL 65,535; staying under the smaller keeps one rule for both.
 */
const MAX_PARAMS = 30_000;

async function inChunks<T>(rows: T[], columns: number, insert: (chunk: T[]) => Promise<unknown>): Promise<void> {
  const size = Math.max(1, Math.floor(MAX_PARAMS / columns));
  for (let i = 0; i < rows.length; i += size) await insert(rows.slice(i, i + size));
}

function columnsOf(rows: object[]): number {
  return rows[0] ? Object.keys(rows[0]).length : 1;
}

export interface SeedResult {
  seconds: number;
  /** rows per table after seeding, read back from the database */
  counts: Record<string, number>;
}

/**
 * Creates the schema (the store's own migrations) and inserts the plan with
 * multi-row inserts in one transaction. PostgreSQL is then vacuumed and
 * analysed, as autovacuum would do shortly after a bulk load; SQLite is left
 * as Atrium leaves it (Atrium does not run ANALYZE), its WAL checkpointed.
 */
export async function seedStore(target: DatabaseTarget, plan: Plan): Promise<SeedResult> {
  const started = performance.now();
  const store = await createStore(target);
  try {
    const { rows } = plan;
    await store.db.transaction().execute(async (tx) => {
      await inChunks(rows.users, columnsOf(rows.users), (c) => tx.insertInto('users').values(c).execute());
      await inChunks(rows.teams, columnsOf(rows.teams), (c) => tx.insertInto('teams').values(c).execute());
      await inChunks(rows.memberships, columnsOf(rows.memberships), (c) => tx.insertInto('memberships').values(c).execute());
      await inChunks(rows.tokens, columnsOf(rows.tokens), (c) => tx.insertInto('tokens').values(c).execute());
      await inChunks(rows.workspaces, columnsOf(rows.workspaces), (c) => tx.insertInto('workspaces').values(c).execute());
    });
    if (store.dialect === 'postgres') await sql`vacuum analyze`.execute(store.db);
    else await sql`pragma wal_checkpoint(truncate)`.execute(store.db);

    const counts: Record<string, number> = {};
    for (const table of ['users', 'teams', 'memberships', 'tokens', 'workspaces'] as const) {
      const r = await store.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      counts[table] = Number(r.n);
    }
    return { seconds: (performance.now() - started) / 1000, counts };
  } finally {
    await store.close();
  }
}

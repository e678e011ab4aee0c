import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { migrations } from './migrations.js';
import type { Database } from './schema.js';

export type Dialect = 'sqlite' | 'postgres';

export type DatabaseTarget = { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string; poolSize: number };

// int8 and numeric come back from pg as strings; every such column here is a
// count, a size in bytes or a time in ms, all well inside 2^53.
pg.types.setTypeParser(20, (v) => Number(v));
pg.types.setTypeParser(1700, (v) => Number(v));

/** Rows as arrays, with their column names: what a list query costs least to read. */
export type RawAll = (sql: string, parameters: readonly unknown[]) => Promise<{ columns: string[]; rows: unknown[][] }>;

export function openDatabase(target: DatabaseTarget): { db: Kysely<Database>; dialect: Dialect; raw: RawAll } {
  if (target.kind === 'postgres') {
    const pool = new pg.Pool({ connectionString: target.url, max: target.poolSize });
    const name = statementNames();
    const raw: RawAll = async (text, values) => {
      const r = await pool.query({ text, values: values as unknown[], rowMode: 'array', ...name(text, values) });
      return { columns: r.fields.map((f) => f.name), rows: r.rows as unknown[][] };
    };
    const preparing = {
      async connect() {
        const client = await pool.connect();
        return {
          query: (text: string, values: readonly unknown[]) => client.query({ text, values: values as unknown[], ...name(text, values) }),
          release: () => client.release(),
        };
      },
      end: () => pool.end(),
    };
    return { db: new Kysely<Database>({ dialect: new PostgresDialect({ pool: preparing as unknown as pg.Pool }) }), dialect: 'postgres', raw };
  }
  if (target.file !== ':memory:') mkdirSync(dirname(target.file), { recursive: true, mode: 0o700 });
  const sqlite = new SQLite(target.file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  const cached = cachingStatements(sqlite);
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: cached }) });
  // holding Kysely's connection keeps the read out of any transaction in flight on the one SQLite connection
  const raw: RawAll = (sql, parameters) => db.connection().execute(async () => cached.raw(sql, parameters));
  return { db, dialect: 'sqlite', raw };
}

/**
 * Names parameterized statements so that each pooled connection parses and
 * plans them once: planning the joined list queries costs PostgreSQL several
 * times what running them does. The set of statements is fixed by the code;
 * past a bound (an unexpected stream of distinct texts) statements run unnamed.
 */
function statementNames() {
  const names = new Map<string, string>();
  return (text: string, values: readonly unknown[]): { name?: string } => {
    if (values.length === 0) return {};
    let n = names.get(text);
    if (n === undefined) {
      if (names.size >= 500) return {};
      n = `atrium_${names.size}`;
      names.set(text, n);
    }
    return { name: n };
  };
}

/**
 * Reuses prepared statements by their SQL text: preparing costs about as
 * much as running a small query, and the same few dozen statements serve
 * every request. Safe because better-sqlite3 runs each one to completion
 * synchronously (nothing here iterates a statement across awaits).
 */
function cachingStatements(sqlite: SQLite.Database) {
  const cache = new Map<string, SQLite.Statement>();
  const rawCache = new Map<string, { stmt: SQLite.Statement; columns: string[] }>();
  return {
    close: () => sqlite.close(),
    raw(sql: string, parameters: readonly unknown[]) {
      let entry = rawCache.get(sql);
      if (!entry) {
        const stmt = sqlite.prepare(sql).raw(true);
        entry = { stmt, columns: stmt.columns().map((c) => c.name) };
        if (rawCache.size >= 100) rawCache.clear();
        rawCache.set(sql, entry);
      }
      return { columns: entry.columns, rows: entry.stmt.all(...parameters) as unknown[][] };
    },
    prepare(sql: string): SQLite.Statement {
      let stmt = cache.get(sql);
      if (!stmt) {
        stmt = sqlite.prepare(sql);
        if (cache.size >= 1000) cache.clear();
        cache.set(sql, stmt);
      }
      return stmt;
    },
  };
}

/** Brings the schema to the newest version; fails loudly with the migration that broke. */
export async function migrate(db: Kysely<Database>, dialect: Dialect): Promise<string[]> {
  const migrator = new Migrator({ db, provider: migrations(dialect) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(failed ? `migration ${failed.migrationName} failed: ${(error as Error).message}` : (error as Error).message);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

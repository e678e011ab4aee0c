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

/**
 * Runs a list query (hundreds of rows per request) and returns its rows as
 * plain objects keyed by column name, read the cheapest way each database
 * allows. Column values are what the database holds: numbers for integers
 * (bigints included, as everywhere here), strings for text.
 */
export type ListRows = (sql: string, parameters: readonly unknown[]) => Promise<Record<string, unknown>[]>;

export function openDatabase(target: DatabaseTarget): { db: Kysely<Database>; dialect: Dialect; listRows: ListRows } {
  if (target.kind === 'postgres') {
    const pool = new pg.Pool({ connectionString: target.url, max: target.poolSize });
    const name = statementNames();
    /*
     * PostgreSQL writes the whole result as one JSON text, in C on its own
     * process, and one JSON.parse here replaces the client's field-by-field
     * protocol parsing (about a third of the control plane's CPU per listed
     * page). The aggregate takes the rows in the sorted subquery's order (the
     * plan is an aggregate over that one subquery, never parallel under a
     * LIMIT), which PostgREST's reads rely on as well.
     */
    const listRows: ListRows = async (text, values) => {
      const wrapped = `select coalesce(json_agg(r), '[]')::text from (${text}) r`;
      const r = await pool.query({ text: wrapped, values: values as unknown[], rowMode: 'array', ...name(wrapped, values) });
      return JSON.parse((r.rows as string[][])[0]![0]!) as Record<string, unknown>[];
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
    return { db: new Kysely<Database>({ dialect: new PostgresDialect({ pool: preparing as unknown as pg.Pool }) }), dialect: 'postgres', listRows };
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
  const listRows: ListRows = (sql, parameters) =>
    db.connection().execute(async () => {
      const { columns, rows } = cached.raw(sql, parameters);
      const build = rowBuilder(columns);
      return rows.map(build);
    });
  return { db, dialect: 'sqlite', listRows };
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
 * Builds a row object from an array row in one object literal, compiled once
 * per column list: SQLite's array rows cost about half of its row objects,
 * and this turns them into objects without a property-by-property loop.
 */
const rowBuilders = new Map<string, (a: unknown[]) => Record<string, unknown>>();
function rowBuilder(columns: string[]): (a: unknown[]) => Record<string, unknown> {
  const key = columns.join(',');
  let build = rowBuilders.get(key);
  if (!build) {
    // column names come from our own SQL (Kysely-built, fixed), never from input
    build = new Function('a', `return {${columns.map((c, i) => `${JSON.stringify(c)}: a[${i}]`).join(', ')}};`) as (a: unknown[]) => Record<string, unknown>;
    rowBuilders.set(key, build);
  }
  return build;
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
    throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message}`);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

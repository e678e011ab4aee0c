import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../src/config/index.js';
import type { DatabaseTarget } from '../src/store/index.js';
import { createServer, type Server } from '../src/server/index.js';

export { waitUntil } from './wait.js';

export const ADMIN_PASSWORD = 'admin-password-for-tests';

/**
 * The databases a store or API suite runs against: SQLite always, and
 * PostgreSQL when the test script started one. In CI a missing PostgreSQL is
 * an error, never a silent skip.
 */
export function databaseKinds(): Array<'sqlite' | 'postgres'> {
  if (process.env.ATRIUM_TEST_POSTGRES) return ['sqlite', 'postgres'];
  if (process.env.CI) throw new Error('ATRIUM_TEST_POSTGRES is not set; run the suite through scripts/test.sh');
  return ['sqlite'];
}

/** A loopback port free now: for a server whose URL others must know before it starts (an identity provider's redirect URIs). */
export async function freePort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'atrium-test-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A fresh, empty database of the given kind. */
export async function freshDatabase(kind: 'sqlite' | 'postgres', poolSize = 10): Promise<DatabaseTarget> {
  if (kind === 'sqlite') return { kind: 'sqlite', file: join(tempDir(), 'atrium.db') };
  const admin = process.env.ATRIUM_TEST_POSTGRES!;
  const name = `atrium_t_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return { kind: 'postgres', url: url.toString(), poolSize };
}

export interface TestServer {
  server: Server;
  url: string;
  adminToken: string;
  /** Calls the API; never throws on HTTP errors. */
  call(method: string, path: string, opts?: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>;
  /** Creates a local user and returns a bearer token for them. */
  user(username: string, opts?: { admin?: boolean }): Promise<string>;
}

/** Starts a real server on a free loopback port. */
export async function startServer(opts: { database?: 'sqlite' | 'postgres'; poolSize?: number; env?: Record<string, string>; flags?: Record<string, unknown> } = {}): Promise<TestServer> {
  const db = await freshDatabase(opts.database ?? 'sqlite', opts.poolSize);
  const dir = tempDir();
  const config = loadConfig({
    env: { ATRIUM_LOG_LEVEL: 'fatal', ...opts.env },
    flags: {
      'listen.port': 0,
      'ssh.port': 0,
      dataDir: dir,
      database: db.kind === 'sqlite' ? `sqlite:${db.file}` : db.url,
      databasePoolSize: db.kind === 'postgres' ? db.poolSize : undefined,
      'runtime.kind': 'none',
      ...opts.flags,
    },
  });
  const server = await createServer(config);
  await server.identity.bootstrapAdmin('admin', ADMIN_PASSWORD);
  const url = await server.listen();
  after(() => server.close());

  const call: TestServer['call'] = async (method, path, o = {}) => {
    const headers: Record<string, string> = { ...o.headers };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    if (o.body !== undefined || o.rawBody !== undefined) headers['content-type'] ??= 'application/json';
    const res = await fetch(url + path, { method, headers, ...(o.rawBody !== undefined ? { body: o.rawBody } : o.body !== undefined ? { body: JSON.stringify(o.body) } : {}) });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body, headers: res.headers };
  };
  const login = async (username: string, password: string) => {
    const r = await call('POST', '/api/v1/auth/login', { body: { username, password, token: { name: 'test' } } });
    if (r.status !== 200) throw new Error(`login ${username}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.token as string;
  };
  const adminToken = await login('admin', ADMIN_PASSWORD);
  return {
    server,
    url,
    adminToken,
    call,
    async user(username, o = {}) {
      const password = `pw-${username}-secret`;
      const r = await call('POST', '/api/v1/users', { token: adminToken, body: { username, password, ...(o.admin ? { admin: true } : {}) } });
      if (r.status !== 201) throw new Error(`create ${username}: ${r.status} ${JSON.stringify(r.body)}`);
      return login(username, password);
    },
  };
}

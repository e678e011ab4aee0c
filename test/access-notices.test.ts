import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../src/config/index.js';
import { createServer, type Server } from '../src/server/index.js';
import type { DatabaseTarget } from '../src/store/index.js';
import { ADMIN_PASSWORD, databaseKinds, freshDatabase, waitUntil } from './helpers.js';

/** A control plane on `db` (several may share one PostgreSQL database), its data directory its own. */
async function controlPlane(db: DatabaseTarget & { kind: 'postgres' }, keyFile: string): Promise<{ server: Server; url: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'atrium-test-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  // the signing keys in the database open with one key file, which every control plane on it is given
  const config = loadConfig({ env: { ATRIUM_LOG_LEVEL: 'fatal' }, flags: { 'listen.port': 0, 'ssh.port': 0, dataDir: dir, database: db.url, databasePoolSize: db.poolSize, 'runtime.kind': 'none', 'workloadIdentity.keyFile': keyFile } });
  const server = await createServer(config);
  const url = await server.listen();
  after(() => server.close());
  return { server, url };
}

const whoAmI = async (url: string, token: string) => (await fetch(`${url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } })).status;

test('control planes on one PostgreSQL database hear each other\'s access changes at once', { skip: !databaseKinds().includes('postgres') && 'PostgreSQL is not running (scripts/test.sh starts it)' }, async (t) => {
  const db = (await freshDatabase('postgres')) as DatabaseTarget & { kind: 'postgres' };
  const shared = mkdtempSync(join(tmpdir(), 'atrium-test-'));
  after(() => rmSync(shared, { recursive: true, force: true }));
  const keyFile = join(shared, 'workload-identity.key');
  const a = await controlPlane(db, keyFile);
  await a.server.identity.bootstrapAdmin('admin', ADMIN_PASSWORD);
  const b = await controlPlane(db, keyFile);
  await waitUntil('both control planes to listen', () => a.server.store.accessNoticesLive() && b.server.store.accessNoticesLive(), { timeoutMs: 10_000 });

  const login = await fetch(`${a.url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD, token: { name: 'notices' } }) });
  const { token } = (await login.json()) as { token: string };

  await t.test('a token revoked through one control plane is refused by the other, which had it cached', async () => {
    // B authenticates the token and keeps it: with notices heard, for a minute
    assert.equal(await whoAmI(b.url, token), 200);
    assert.equal(await whoAmI(b.url, token), 200);
    const { items } = (await (await fetch(`${a.url}/api/v1/me/tokens`, { headers: { authorization: `Bearer ${token}` } })).json()) as { items: Array<{ id: string; name: string }> };
    const mine = items.find((x) => x.name === 'notices');
    assert.ok(mine, 'the token is listed');
    const revoked = await fetch(`${a.url}/api/v1/me/tokens/${mine.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    assert.equal(revoked.status, 204);
    const began = Date.now();
    await waitUntil('the other control plane to refuse the revoked token', async () => (await whoAmI(b.url, token)) === 401, { timeoutMs: 10_000, everyMs: 20 });
    // well inside the minute B would otherwise have kept it
    assert.ok(Date.now() - began < 10_000);
  });

  await t.test('a control plane whose listening connection is cut forgets what it kept, and listens again', async () => {
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      await admin.query("select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and query ilike 'LISTEN%' and pid <> pg_backend_pid()");
    } finally {
      await admin.end();
    }
    await waitUntil('the cut to be noticed', () => !b.server.store.accessNoticesLive() || !a.server.store.accessNoticesLive(), { timeoutMs: 5000, everyMs: 5 }).catch(() => undefined);
    await waitUntil('both control planes to listen again', () => a.server.store.accessNoticesLive() && b.server.store.accessNoticesLive(), { timeoutMs: 30_000 });
  });
});

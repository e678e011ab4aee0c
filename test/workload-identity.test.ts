import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig } from '../src/config/index.js';
import { createServer } from '../src/server/index.js';
import { databaseKinds, freshDatabase, startServer, waitUntil } from './helpers.js';
import { run, sandboxesAvailable, startSandboxServer } from './sandbox.js';

const VERIFY = fileURLToPath(new URL('./verify-jwt.py', import.meta.url));
/** Debian's Python, where python3-jwt and python3-cryptography are installed */
const PYTHON = '/usr/bin/python3';

interface Verdict {
  ok: boolean;
  claims?: Record<string, unknown>;
  kid?: string;
  error?: string;
  message?: string;
}

/** Verifies `token` as a trusting service would: PyJWT, the key found through the issuer's discovery document. */
async function verify(issuer: string, audience: string, token: string): Promise<Verdict> {
  const dir = mkdtempSync(join(tmpdir(), 'atrium-jwt-'));
  try {
    writeFileSync(join(dir, 'token'), token);
    const r = await run('/bin/sh', ['-c', `${PYTHON} ${VERIFY} "$1" "$2" < "$3"`, 'verify', issuer, audience, join(dir, 'token')]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Verdict;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const b64json = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString()) as Record<string, unknown>;

describe('workload identity: the issuer', () => {
  test('discovery and key set are public, name the issuer Atrium listens as, and hold the signing and the next key', async () => {
    const t = await startServer();
    const d = await t.call('GET', '/.well-known/openid-configuration');
    assert.equal(d.status, 200);
    assert.equal(d.body.issuer, t.url);
    assert.equal(d.body.jwks_uri, `${t.url}/.well-known/jwks.json`);
    assert.deepEqual(d.body.id_token_signing_alg_values_supported, ['RS256']);
    const jwks = await t.call('GET', '/.well-known/jwks.json');
    assert.equal(jwks.status, 200);
    assert.equal(jwks.body.keys.length, 2);
    for (const k of jwks.body.keys) {
      assert.equal(k.kty, 'RSA');
      assert.equal(k.alg, 'RS256');
      assert.equal(k.use, 'sig');
      for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi']) assert.equal(k[priv], undefined, `the key set publishes ${priv}`);
    }
    const view = await t.call('GET', '/api/v1/workload-identity', { token: t.adminToken });
    assert.equal(view.status, 200);
    assert.deepEqual(view.body.keys.map((k: { state: string }) => k.state).sort(), ['next', 'signing']);
    assert.deepEqual(view.body.audiences, ['atrium']);
    // people who are not admins see no key states
    const bob = await t.user('bob');
    assert.equal((await t.call('GET', '/api/v1/workload-identity', { token: bob })).status, 403);
    assert.equal((await t.call('POST', '/api/v1/workload-identity/rotate', { token: bob })).status, 403);
  });

  for (const kind of databaseKinds()) {
    test(`rotation (${kind}): the next key signs, the retired one stays published until its last token expires, then leaves with its private half`, async () => {
      let now = Date.now();
      const db = await freshDatabase(kind);
      const { createStore } = await import('../src/store/index.js');
      const store = await createStore(db, { now: () => now });
      after(() => store.close());
      const { createWorkloadIdentity } = await import('../src/identity/index.js');
      const dir = mkdtempSync(join(tmpdir(), 'atrium-wi-'));
      after(() => rmSync(dir, { recursive: true, force: true }));
      const log = { info() {}, warn() {}, debug() {} };
      const wi = await createWorkloadIdentity({ store, audiences: ['sts.test'], tokenLifetimeMs: 60_000, keyRotationMs: 3600_000, keyFile: join(dir, 'kek'), log, now: () => now });
      const before = await wi.keys();
      const signing = before.find((k) => k.state === 'signing')!;
      const next = before.find((k) => k.state === 'next')!;
      assert.equal(await wi.rotateIfDue(), false, 'a key not yet due is not rotated');
      now += 3600_000;
      assert.equal(await wi.rotateIfDue(), true);
      const afterRotation = await wi.keys();
      assert.equal(afterRotation.find((k) => k.kid === next.kid)?.state, 'signing', 'the key published ahead signs now');
      const retired = afterRotation.find((k) => k.kid === signing.kid)!;
      assert.equal(retired.state, 'retired');
      assert.ok(retired.expiresAt! >= now + 60_000, 'published at least as long as a token lives');
      assert.equal(afterRotation.filter((k) => k.state === 'next').length, 1, 'a new key waits its turn');
      assert.equal((await wi.jwks()).keys.length, 3);
      // a second control plane on the same database reads the same keys and does not rotate again
      const second = await createWorkloadIdentity({ store, audiences: ['sts.test'], tokenLifetimeMs: 60_000, keyRotationMs: 3600_000, keyFile: join(dir, 'kek'), log, now: () => now });
      assert.deepEqual((await second.keys()).map((k) => k.kid), afterRotation.map((k) => k.kid));
      assert.equal(await second.rotateIfDue(), false);
      // once the retired key's last token has expired it is neither published nor kept
      now = retired.expiresAt! + 1;
      await wi.rotateNow();
      assert.ok(!(await wi.jwks()).keys.some((k) => k.kid === signing.kid));
      const rows = await store.db.selectFrom('signing_keys').select('kid').execute();
      assert.ok(!rows.some((r) => r.kid === signing.kid), 'the expired key is deleted, private half and all');
    });
  }

  test('signing keys are sealed in the database: another key file is refused at start, with the reason', async () => {
    const db = await freshDatabase('sqlite');
    const dir = mkdtempSync(join(tmpdir(), 'atrium-wi-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const config = (keyFile: string) =>
      loadConfig({ env: { ATRIUM_LOG_LEVEL: 'fatal' }, flags: { 'listen.port': 0, 'ssh.port': 0, dataDir: dir, database: `sqlite:${db.kind === 'sqlite' ? db.file : ''}`, 'runtime.kind': 'none', 'workloadIdentity.keyFile': keyFile } });
    const first = await createServer(config(join(dir, 'one.key')));
    const rows = await first.store.db.selectFrom('signing_keys').selectAll().execute();
    assert.equal(rows.length, 2);
    for (const r of rows) assert.match(r.private_key, /^v1\.[\w-]+\.[\w-]+\.[\w-]+$/, 'sealed, not a PEM or DER in the clear');
    await first.close();
    await assert.rejects(createServer(config(join(dir, 'two.key'))), (err: Error) => err instanceof ConfigError && /sealed with another key than .*two\.key/.test(err.message));
    writeFileSync(join(dir, 'short.key'), 'too short');
    await assert.rejects(createServer(config(join(dir, 'short.key'))), (err: Error) => err instanceof ConfigError && /short\.key is damaged: it holds 9 bytes, not 32/.test(err.message));
  });

  test('an empty audience list, or a lifetime out of range, stops the start with the reason; disabled, nothing is published', async () => {
    const bad = (flags: Record<string, unknown>) => () => loadConfig({ env: {}, flags: { 'runtime.kind': 'none', ...flags } });
    assert.throws(bad({ 'workloadIdentity.audiences': [] }), /workloadIdentity\.audiences is empty: name who the tokens are for/);
    assert.throws(bad({ 'workloadIdentity.tokenLifetime': '5s' }), /workloadIdentity\.tokenLifetime: must be between 10s and 24h/);
    assert.throws(bad({ 'workloadIdentity.audiences': ['a', 'a'] }), /an audience is named twice/);
    assert.throws(bad({ 'runtime.kind': 'kubernetes', 'kubernetes.clusters': [{ name: 'east', kubeconfig: '/x' }], 'workloadIdentity.tokenLifetime': '5m' }), /at least 10m with the Kubernetes runtime/);
    const t = await startServer({ flags: { 'workloadIdentity.enabled': false } });
    assert.equal((await t.call('GET', '/.well-known/openid-configuration')).status, 404);
    assert.equal((await t.call('GET', '/.well-known/jwks.json')).status, 404);
  });
});

const available = sandboxesAvailable();

describe('workload identity: tokens in running workspaces', { skip: available === true ? false : available }, () => {
  test('a workspace reads a token PyJWT verifies through the JWKS URL; it is refreshed before it expires, survives a key rotation, and stops once the workspace stops', async () => {
    const t = await startSandboxServer({ 'workloadIdentity.audiences': ['sts.test', 'vault.test'], 'workloadIdentity.tokenLifetime': '15s' });
    const ada = await t.user('ada');
    await t.addKey(ada, 'ada');
    assert.equal((await t.call('POST', '/api/v1/teams/ada/workspaces', { token: ada, body: { name: 'lab', profile: 'tiny' } })).status, 201);
    await t.waitPhase(ada, 'ada/lab', ['running']);
    const read = async () => {
      const r = await t.sh('ada/lab', 'echo "$ATRIUM_TOKEN_FILE"; cat "$ATRIUM_TOKEN_FILE"; echo; stat -c "%a %U" "$ATRIUM_TOKEN_FILE"; touch /var/run/secrets/atrium/x 2>&1 || true');
      assert.equal(r.code, 0, r.stderr);
      const [file, token, mode, write] = r.stdout.split('\n');
      return { file, token: token!, mode, write };
    };
    const first = await read();
    assert.equal(first.file, '/var/run/secrets/atrium/token');
    assert.equal(first.mode, '440 root', 'root-owned, readable through the group');
    assert.match(first.write!, /Read-only file system/, 'the workspace cannot replace its token');
    // the token is in the file, never in the environment
    const env = await t.sh('ada/lab', 'env');
    assert.ok(!env.stdout.includes(first.token.split('.')[2]!), 'the token is in the environment');

    const issuer = t.url;
    const v = await verify(issuer, 'sts.test', first.token);
    assert.ok(v.ok, JSON.stringify(v));
    assert.equal(v.claims!.sub, 'system:atrium:ada:lab');
    assert.equal(v.claims!.iss, issuer);
    assert.deepEqual(v.claims!.aud, ['sts.test', 'vault.test']);
    assert.equal(v.claims!.team, 'ada');
    assert.equal(v.claims!.owner, 'ada');
    assert.equal(v.claims!.profile, 'tiny');
    assert.equal(v.claims!.workspace, 'lab');
    assert.equal(Number(v.claims!.exp) - Number(v.claims!.iat), 15);
    assert.ok((await verify(issuer, 'vault.test', first.token)).ok, 'every configured audience verifies');
    // what a verifier refuses
    assert.equal((await verify(issuer, 'someone-else', first.token)).error, 'InvalidAudienceError');
    const [h, p, s] = first.token.split('.') as [string, string, string];
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...b64json(p), sub: 'system:atrium:other:lab' })).toString('base64url')}.${s}`;
    assert.equal((await verify(issuer, 'sts.test', forged)).error, 'InvalidSignatureError');

    // the workspace shows what it holds
    const shown = (await t.call('GET', '/api/v1/teams/ada/workspaces/lab', { token: ada })).body.identity;
    assert.equal(shown.subject, 'system:atrium:ada:lab');
    assert.equal(shown.tokenFile, '/var/run/secrets/atrium/token');
    assert.equal(Date.parse(shown.tokenExpiresAt), Number(v.claims!.exp) * 1000);

    // refreshed at 80% of its lifetime: a new token appears while the first is still valid
    const expiresAt = Number(v.claims!.exp) * 1000;
    const second = await waitUntil('a fresh token', async () => {
      const r = await read();
      return r.token !== first.token && r;
    }, { timeoutMs: 30_000, everyMs: 500 });
    assert.ok(Date.now() < expiresAt, 'the new token arrived before the old one expired');
    const v2 = await verify(issuer, 'sts.test', second.token);
    assert.ok(v2.ok, JSON.stringify(v2));
    assert.ok(Number(v2.claims!.iat) > Number(v.claims!.iat));

    // a rotation: the next key signs from now on, and tokens signed before keep verifying until they expire
    const rotated = await t.call('POST', '/api/v1/workload-identity/rotate', { token: t.adminToken });
    assert.equal(rotated.status, 200);
    const retired = rotated.body.keys.find((k: { kid: string }) => k.kid === v2.kid);
    assert.equal(retired.state, 'retired');
    assert.ok((await verify(issuer, 'sts.test', second.token)).ok, 'a token signed by the retired key still verifies');
    const third = await waitUntil('a token from the new key', async () => {
      const r = await read();
      return r.token !== second.token && r;
    }, { timeoutMs: 30_000, everyMs: 500 });
    const v3 = await verify(issuer, 'sts.test', third.token);
    assert.ok(v3.ok, JSON.stringify(v3));
    assert.notEqual(v3.kid, v2.kid);
    assert.equal(rotated.body.keys.find((k: { kid: string }) => k.kid === v3.kid)?.state, 'signing');

    // stopped: nothing more is issued for it, and what it held expires
    const id = await t.wsId('ada/lab');
    assert.equal((await t.call('POST', '/api/v1/teams/ada/workspaces/lab/stop', { token: ada })).status, 200);
    await t.waitPhase(ada, 'ada/lab', ['stopped']);
    assert.equal((await t.call('GET', '/api/v1/teams/ada/workspaces/lab', { token: ada })).body.identity.tokenExpiresAt, null);
    assert.ok(!existsSync(join(t.dataDir, 'local', 'run', id, 'secrets')), 'the token left the host with the sandbox');
    const issued = t.server.workloadIdentity!.issuedTotal;
    const lastExpiry = Number(v3.claims!.exp) * 1000;
    await new Promise((r) => setTimeout(r, Math.max(0, lastExpiry - Date.now()) + 1500));
    assert.equal(t.server.workloadIdentity!.issuedTotal, issued, 'no token was issued for the stopped workspace');
    assert.equal((await verify(issuer, 'sts.test', third.token)).error, 'ExpiredSignatureError');
    const metrics = await t.call('GET', '/metrics', { token: t.adminToken });
    assert.match(String(metrics.body), new RegExp(`atrium_workload_tokens_issued_total ${issued}\\b`));
    const db = t.server.config.database;
    if (db.kind === 'sqlite') assert.ok(!readFileSync(db.file).includes(Buffer.from(third.token.split('.')[2]!)), 'tokens are not stored');
  });
});

import assert from 'node:assert/strict';
import { createDecipheriv } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { sql } from 'kysely';
import { createStore } from '../src/store/index.js';
import { ADMIN_PASSWORD, freePort, waitUntil } from './helpers.js';
import { startOidcProvider, TestBrowser } from './oidc.js';
import { AGENT, PROFILES, sandboxesAvailable, serveProcess, uidBase } from './sandbox.js';

const available = sandboxesAvailable();

/** The private key sealed as `v1.<iv>.<ciphertext>.<tag>` under `key`, bound to its key id. */
function unsealed(key: Buffer, sealed: string, kid: string): Buffer {
  const [, iv, body, tag] = sealed.split('.');
  const d = createDecipheriv('aes-256-gcm', key, Buffer.from(iv!, 'base64url'));
  d.setAAD(Buffer.from(`signing key ${kid}`));
  d.setAuthTag(Buffer.from(tag!, 'base64url'));
  return Buffer.concat([d.update(Buffer.from(body!, 'base64url')), d.final()]);
}

/**
 * The built server (`atrium serve`, logging at debug) through a day's
 * secrets: a client secret from a file, a password sign-in, a single
 * sign-on, API tokens, a CLI sign-in code, workload tokens issued and
 * refreshed, a key rotation. None of them, nor the signing keys or the key
 * that seals them, appears in what it logged, in any API answer, or in the
 * audit log.
 */
test('secrets never reach the logs, API answers or the audit log', { skip: available === true ? false : available, timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'atrium-secrets-'));
  const dataDir = join(dir, 'data');
  after(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const clientSecret = 'corp-client-secret-never-logged-4f1e9';
  const metricsToken = 'metrics-token-never-logged-77b2c1';
  const corp = await startOidcProvider({
    clientId: 'atrium',
    clientSecret,
    redirectUris: [`${base}/api/v1/auth/oidc/corp/callback`],
    accounts: [{ sub: 'u-ada', email: 'ada@example.com', email_verified: true, name: 'Ada', preferred_username: 'ada', groups: [] }],
  });
  after(() => corp.close());
  writeFileSync(join(dir, 'oidc-secret'), `${clientSecret}\n`, { mode: 0o600 });
  const config = join(dir, 'atrium.json');
  writeFileSync(
    config,
    JSON.stringify({
      logLevel: 'debug',
      logFormat: 'json',
      profiles: PROFILES,
      runtime: { agent: AGENT, stopGrace: '2s', reserve: { cpu: '0', memory: '0' }, uidBase: uidBase() },
      auth: { oidc: [{ name: 'corp', displayName: 'Corp', issuer: corp.issuer, clientId: 'atrium', clientSecretFile: join(dir, 'oidc-secret') }] },
      workloadIdentity: { tokenLifetime: '10s', audiences: ['sts.test'] },
      metrics: { token: metricsToken },
    }),
  );
  const atrium = serveProcess({ config, dataDir, port });
  after(() => atrium.kill9());
  await atrium.start();
  const admin = await atrium.login();
  const answers: string[] = [];
  const call = async (method: string, path: string, token: string, body?: unknown) => {
    const r = await atrium.call(method, path, token, body);
    answers.push(JSON.stringify(r.body ?? ''));
    return r;
  };

  // people and their credentials (the answers that show a secret once are not searched)
  const created = await atrium.call('POST', '/api/v1/users', admin, { username: 'mia' });
  const miaPassword = created.body.password as string;
  assert.ok(miaPassword);
  const miaLogin = await fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'mia', password: miaPassword }) });
  const miaSession = miaLogin.headers.getSetCookie().map((c) => c.split(';')[0]!).find((c) => /session=/.test(c))!.split('=')[1]!;
  assert.ok(miaSession);
  const apiToken = (await atrium.call('POST', '/api/v1/me/tokens', admin, { name: 'ci' })).body.token as string;
  const browser = new TestBrowser();
  await browser.signIn(`${base}/api/v1/auth/oidc/corp/login`, 'u-ada', (h) => h.url === `${base}/`);
  const ssoSession = [...(browser.jar.get(`127.0.0.1:${port}`)?.entries() ?? [])].find(([name]) => /session/.test(name))?.[1];
  assert.ok(ssoSession, 'signed in through the provider');
  const cli = (await fetch(`${base}/api/v1/auth/cli-logins`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'cli' }) }).then((r) => r.json())) as { pollSecret: string };
  await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } });

  // a workspace holding workload tokens, refreshed at least once, across a key rotation
  assert.equal((await call('POST', '/api/v1/teams/admin/workspaces', admin, { name: 'lab', profile: 'tiny' })).status, 201);
  await waitUntil('the workspace to run', async () => (await call('GET', '/api/v1/teams/admin/workspaces/lab', admin)).body.phase === 'running', { timeoutMs: 120_000, everyMs: 250 });
  const id = (await call('GET', '/api/v1/teams/admin/workspaces/lab', admin)).body.id as string;
  const tokenFile = join(dataDir, 'local', 'run', id, 'secrets', 'token');
  const workloadTokens = new Set<string>([readFileSync(tokenFile, 'utf8')]);
  assert.equal((await call('POST', '/api/v1/workload-identity/rotate', admin)).status, 200);
  await waitUntil('two refreshes', () => {
    workloadTokens.add(readFileSync(tokenFile, 'utf8'));
    return workloadTokens.size >= 3;
  }, { timeoutMs: 40_000, everyMs: 200 });
  for (const path of ['/api/v1/workload-identity', '/.well-known/jwks.json', '/.well-known/openid-configuration', '/api/v1/audit?limit=500', '/api/v1/auth/providers', '/api/v1/me/tokens', '/api/v1/users', '/api/v1/teams/admin/workspaces/lab']) {
    assert.equal((await call('GET', path, admin)).status, 200, path);
  }
  await call('POST', '/api/v1/teams/admin/workspaces/lab/stop', admin);
  await waitUntil('the workspace to stop', async () => (await call('GET', '/api/v1/teams/admin/workspaces/lab', admin)).body.phase === 'stopped', { timeoutMs: 60_000 });
  await atrium.kill9();

  // what the database and the key file hold, to look for
  const keyFile = readFileSync(join(dataDir, 'secrets', 'workload-identity.key'));
  const store = await createStore({ kind: 'sqlite', file: join(dataDir, 'atrium.db') }, { migrate: false });
  const keys = await store.db.selectFrom('signing_keys').selectAll().execute();
  const audit = JSON.stringify((await sql`select * from audit`.execute(store.db)).rows);
  await store.close();
  assert.ok(keys.length >= 3);
  const privateKeys = keys.map((k) => unsealed(keyFile, k.private_key, k.kid));

  const secrets: Array<[string, string]> = [
    ['the OIDC client secret', clientSecret],
    ['the admin password', ADMIN_PASSWORD],
    ["mia's generated password", miaPassword],
    ["mia's session", miaSession],
    ['the SSO session', ssoSession],
    ['an API token', apiToken],
    ['the admin CLI token', admin],
    ['a CLI sign-in poll secret', cli.pollSecret],
    ['the metrics token', metricsToken],
    ['the key file (base64)', keyFile.toString('base64')],
    ['the key file (hex)', keyFile.toString('hex')],
  ];
  for (const t of workloadTokens) secrets.push(['a workload token', t], ["a workload token's signature", t.split('.')[2]!]);
  for (const [i, der] of privateKeys.entries()) {
    secrets.push([`signing key ${i} (DER, base64)`, der.toString('base64').slice(0, 64)], [`signing key ${i} (DER, base64url)`, der.toString('base64url').slice(0, 64)]);
  }
  const logs = atrium.output;
  assert.ok(logs.includes('workload token issued'), 'the debug log was on and saw tokens issued');
  const found: string[] = [];
  for (const [what, secret] of secrets) {
    if (logs.includes(secret)) found.push(`${what} in the log`);
    if (answers.some((a) => a.includes(secret))) found.push(`${what} in an API answer`);
    if (audit.includes(secret)) found.push(`${what} in the audit log`);
  }
  assert.deepEqual(found, []);
});

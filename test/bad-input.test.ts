import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import { databaseKinds, startServer, type TestServer } from './helpers.js';

const TABLES = ['users', 'teams', 'memberships', 'sessions', 'tokens', 'ssh_keys', 'gpu_pools', 'gpu_grants', 'workspaces', 'events', 'volumes', 'oidc_logins', 'cli_logins'];

async function checksums(t: TestServer): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const table of TABLES) {
    const rows = await sql`select * from ${sql.table(table)} order by 1`.execute(t.server.store.db);
    out[table] = createHash('sha256').update(JSON.stringify(rows.rows)).digest('hex');
  }
  return out;
}

const BAD_NAMES = ['ML', 'a', '-ab', 'ab-', 'a--b', 'a_b', 'ünï', '../etc', 'a/b', 'a.b', ' ab', 'x'.repeat(33), '', 'ws\u0000', '😀ab', '1ab', 'ab\\c'];
const BAD_QUANTITIES = ['-1', '1.5.5', '10Zi', '1e400', '', 'abc', '1 Gi', '١٢', '0x10', '1e', 'Infinity'];

interface Case {
  what: string;
  method: string;
  path: string;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
  status?: number;
  message?: RegExp;
}

function cases(): Case[] {
  const c: Case[] = [];
  for (const name of BAD_NAMES) {
    c.push({ what: `workspace name ${JSON.stringify(name)}`, method: 'POST', path: '/api/v1/teams/ml/workspaces', body: { name, profile: 'small' }, status: 400, message: /body\.name/ });
    c.push({ what: `team name ${JSON.stringify(name)}`, method: 'POST', path: '/api/v1/teams', body: { name }, status: 400 });
    c.push({ what: `username ${JSON.stringify(name)}`, method: 'POST', path: '/api/v1/users', body: { username: name }, status: 400 });
    c.push({ what: `member ${JSON.stringify(name)}`, method: 'PUT', path: `/api/v1/teams/ml/members/${encodeURIComponent(name)}`, body: { role: 'viewer' } });
    c.push({ what: `team path ${JSON.stringify(name)}`, method: 'POST', path: `/api/v1/teams/${encodeURIComponent(name)}/workspaces`, body: { name: 'ok-name', profile: 'small' } });
    c.push({ what: `workspace path ${JSON.stringify(name)}`, method: 'DELETE', path: `/api/v1/teams/ml/workspaces/${encodeURIComponent(name)}` });
  }
  for (const q of BAD_QUANTITIES) {
    for (const dim of ['cpu', 'memory', 'storage']) {
      c.push({ what: `quota ${dim} ${JSON.stringify(q)}`, method: 'PATCH', path: '/api/v1/teams/ml/quota', body: { [dim]: q }, status: 400, message: new RegExp(`\\b${dim}\\b`) });
    }
  }
  c.push(
    { what: 'quota workspaces -1', method: 'PATCH', path: '/api/v1/teams/ml/quota', body: { workspaces: -1 }, status: 400 },
    { what: 'quota workspaces 1.5', method: 'PATCH', path: '/api/v1/teams/ml/quota', body: { workspaces: 1.5 }, status: 400 },
    { what: 'quota workspaces as string', method: 'PATCH', path: '/api/v1/teams/ml/quota', body: { workspaces: '5' }, status: 400, message: /must be integer/ },
    { what: 'quota gpu type uppercase', method: 'PATCH', path: '/api/v1/teams/ml/quota', body: { gpu: { A100: 1 } }, status: 400 },
    { what: 'quota gpu negative', method: 'PATCH', path: '/api/v1/teams/ml/quota', body: { gpu: { a100: -1 } }, status: 400 },
    { what: 'quota empty', method: 'PATCH', path: '/api/v1/teams/ml/quota', body: {}, status: 400 },
    { what: 'quota unknown dimension', method: 'PATCH', path: '/api/v1/teams/ml/quota', body: { cpu: '2', disks: 3 }, status: 400, message: /unknown field "disks"/ },
    { what: 'unknown field', method: 'POST', path: '/api/v1/teams/ml/workspaces', body: { name: 'fine', profile: 'small', privileged: true }, status: 400, message: /unknown field "privileged"/ },
    { what: 'missing field', method: 'POST', path: '/api/v1/teams/ml/workspaces', body: { name: 'fine' }, status: 400, message: /missing required field "profile"/ },
    { what: 'unknown profile', method: 'POST', path: '/api/v1/teams/ml/workspaces', body: { name: 'fine', profile: 'huge' }, status: 400, message: /profile huge does not exist; available: / },
    { what: 'name as number', method: 'POST', path: '/api/v1/teams/ml/workspaces', body: { name: 5, profile: 'small' }, status: 400, message: /must be string/ },
    { what: 'start as string', method: 'POST', path: '/api/v1/teams/ml/workspaces', body: { name: 'fine', profile: 'small', start: 'yes' }, status: 400 },
    { what: 'shared as number', method: 'POST', path: '/api/v1/teams/ml/workspaces', body: { name: 'fine', profile: 'small', shared: 1 }, status: 400 },
    { what: 'body is an array', method: 'POST', path: '/api/v1/teams/ml/workspaces', body: [{ name: 'fine', profile: 'small' }], status: 400 },
    { what: 'body is a string', method: 'POST', path: '/api/v1/teams/ml/workspaces', body: 'fine', status: 400 },
    { what: 'body is null', method: 'POST', path: '/api/v1/teams/ml/workspaces', rawBody: 'null', status: 400 },
    { what: 'invalid JSON', method: 'POST', path: '/api/v1/teams/ml/workspaces', rawBody: '{"name": "fine",', status: 400, message: /not valid JSON/ },
    { what: 'prototype pollution', method: 'POST', path: '/api/v1/teams/ml/workspaces', rawBody: '{"name":"fine","profile":"small","__proto__":{"admin":true}}', status: 400 },
    { what: 'wrong content type', method: 'POST', path: '/api/v1/teams/ml/workspaces', rawBody: 'name=fine', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415 },
    { what: 'oversize body', method: 'POST', path: '/api/v1/teams/ml/workspaces', rawBody: JSON.stringify({ name: 'fine', profile: 'small', pad: 'x'.repeat(1 << 20) }), status: 413, message: /too large/ },
    { what: 'role unknown', method: 'PUT', path: '/api/v1/teams/ml/members/viewer-one', body: { role: 'god' }, status: 400, message: /must be one of "owner", "editor", "viewer"/ },
    { what: 'password too short', method: 'POST', path: '/api/v1/users', body: { username: 'shorty', password: 'abc' }, status: 400 },
    { what: 'email invalid', method: 'POST', path: '/api/v1/users', body: { username: 'mailer', email: 'not an email' }, status: 400 },
    { what: 'admin flag as string', method: 'POST', path: '/api/v1/users', body: { username: 'sneaky', admin: 'true' }, status: 400 },
    { what: 'token expiry unit', method: 'POST', path: '/api/v1/me/tokens', body: { name: 'x', expiresIn: '5y' }, status: 400 },
    { what: 'token name control chars', method: 'POST', path: '/api/v1/me/tokens', body: { name: 'a\nb' }, status: 400 },
    { what: 'ssh key garbage', method: 'POST', path: '/api/v1/me/ssh-keys', body: { publicKey: 'ssh-ed25519 AAAA not-a-key' }, status: 400, message: /key data/ },
    { what: 'ssh private key', method: 'POST', path: '/api/v1/me/ssh-keys', body: { publicKey: '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----' }, status: 400 },
    { what: 'ssh key type mismatch', method: 'POST', path: '/api/v1/me/ssh-keys', body: { publicKey: `ssh-rsa ${Buffer.from('\u0000\u0000\u0000\u000bssh-ed25519' + 'x'.repeat(40)).toString('base64')}` }, status: 400 },
    { what: 'pool size negative', method: 'POST', path: '/api/v1/gpu-pools', body: { name: 'p1', gpuType: 'a100', size: -1 }, status: 400 },
    { what: 'pool unknown cluster', method: 'POST', path: '/api/v1/gpu-pools', body: { name: 'p1', gpuType: 'a100', size: 1, cluster: 'mars' }, status: 400, message: /cluster mars does not exist/ },
    { what: 'pool owner unknown', method: 'POST', path: '/api/v1/gpu-pools', body: { name: 'p1', gpuType: 'a100', size: 1, owner: 'nobody' }, status: 404 },
    { what: 'grant as string', method: 'PUT', path: '/api/v1/gpu-pools/pool1/grants/ml', body: { limit: '2' }, status: 400 },
    { what: 'grant to unknown team', method: 'PUT', path: '/api/v1/gpu-pools/pool1/grants/nope', body: { limit: 2 }, status: 404 },
    { what: 'team patch empty', method: 'PATCH', path: '/api/v1/teams/ml', body: {}, status: 400 },
    { what: 'user patch unknown', method: 'PATCH', path: '/api/v1/users/viewer-one', body: { role: 'admin' }, status: 400 },
    { what: 'delete purge not boolean', method: 'DELETE', path: '/api/v1/teams/ml/workspaces/kept?purge=maybe', status: 400 },
    { what: 'unknown query parameter', method: 'DELETE', path: '/api/v1/teams/ml/workspaces/kept?force=true', status: 400, message: /unknown field "force"/ },
    { what: 'dot-dot path', method: 'DELETE', path: '/api/v1/teams/ml/workspaces/..%2F..%2Fusers' },
    { what: 'encoded slash in team', method: 'DELETE', path: '/api/v1/teams/ml%2Fkept/workspaces/kept' },
    { what: 'duplicate workspace', method: 'POST', path: '/api/v1/teams/ml/workspaces', body: { name: 'kept', profile: 'small' }, status: 409, message: /already exists/ },
    { what: 'duplicate team', method: 'POST', path: '/api/v1/teams', body: { name: 'ml' }, status: 409 },
    { what: 'team name taken by a user', method: 'POST', path: '/api/v1/teams', body: { name: 'viewer-one' }, status: 409, message: /taken by a user/ },
    { what: 'delete team with workspaces', method: 'DELETE', path: '/api/v1/teams/ml', status: 409, message: /still has 1 workspace/ },
    { what: 'delete personal team', method: 'DELETE', path: '/api/v1/teams/viewer-one', status: 409 },
    { what: 'remove last owner', method: 'DELETE', path: '/api/v1/teams/ml/members/admin', status: 409, message: /at least one owner/ },
    { what: 'volume size not a quantity', method: 'POST', path: '/api/v1/teams/ml/volumes', body: { name: 'vol', size: '10 GB' }, status: 400, message: /body\.size/ },
    { what: 'volume too small', method: 'POST', path: '/api/v1/teams/ml/volumes', body: { name: 'vol', size: '1Mi' }, status: 400, message: /at least 16Mi/ },
    { what: 'volume over quota', method: 'POST', path: '/api/v1/teams/ml/volumes', body: { name: 'vol', size: '100Ti' }, status: 403, message: /storage/ },
    { what: 'volume read-only for unknown', method: 'POST', path: '/api/v1/teams/ml/volumes', body: { name: 'vol', size: '1Gi', readOnlyFor: 'everyone' }, status: 400 },
    { what: 'volume unknown', method: 'PATCH', path: '/api/v1/teams/ml/volumes/nope', body: { size: '2Gi' }, status: 404 },
    { what: 'volume publish to unknown team', method: 'PATCH', path: '/api/v1/teams/ml/volumes/kept-vol', body: { sharedWith: ['nope'] }, status: 404 },
    { what: 'volume shrink', method: 'PATCH', path: '/api/v1/teams/ml/volumes/kept-vol', body: { size: '16Mi' }, status: 400, message: /only grow/ },
    { what: 'mount path outside /data and home', method: 'POST', path: '/api/v1/teams/ml/workspaces', body: { name: 'fine', profile: 'small', volumes: [{ volume: 'kept-vol', path: '/etc/x' }] }, status: 400, message: /path/ },
    { what: 'mount path with dot-dot', method: 'POST', path: '/api/v1/teams/ml/workspaces', body: { name: 'fine', profile: 'small', volumes: [{ volume: 'kept-vol', path: '/data/../etc' }] }, status: 400 },
    { what: 'mount of another team\'s volume', method: 'POST', path: '/api/v1/teams/ml/workspaces', body: { name: 'fine', profile: 'small', volumes: [{ volume: 'other/kept-vol' }] }, status: 403, message: /volume other\/kept-vol/ },
    { what: 'mount paths overlapping', method: 'POST', path: '/api/v1/teams/ml/workspaces', body: { name: 'fine', profile: 'small', volumes: [{ volume: 'kept-vol', path: '/data/a' }, { volume: 'kept-vol', path: '/data/a/b' }] }, status: 400, message: /overlap/ },
    { what: 'image source empty', method: 'POST', path: '/api/v1/images', body: { source: '' }, status: 400 },
    { what: 'image name uppercase', method: 'POST', path: '/api/v1/images', body: { source: 'docker://x/y', name: 'Lab' }, status: 400 },
    { what: 'cli sign-in code malformed', method: 'POST', path: '/api/v1/auth/cli-logins/approve', body: { code: 'AAAA-AAAA' }, status: 400, message: /body\.code/ },
    { what: 'cli sign-in code unknown', method: 'POST', path: '/api/v1/auth/cli-logins/approve', body: { code: 'BCDF-GHJK' }, status: 404 },
    { what: 'cli sign-in for an unknown provider', method: 'POST', path: '/api/v1/auth/cli-logins', body: { name: 'cli', provider: 'nope' }, status: 404 },
    { what: 'cli sign-in token name with a newline', method: 'POST', path: '/api/v1/auth/cli-logins', body: { name: 'a\nb' }, status: 400 },
    { what: 'sso provider unknown', method: 'GET', path: '/api/v1/auth/oidc/nope/login', status: 404 },
    { what: 'sso next not a string', method: 'GET', path: '/api/v1/auth/oidc/nope/login?next=a&next=b', status: 400 },
    { what: 'key rotation with a body', method: 'POST', path: '/api/v1/workload-identity/rotate', body: { kid: 'x' }, status: 400 },
    { what: 'key set with a query', method: 'GET', path: '/.well-known/jwks.json?kid=x', status: 400, message: /unknown field "kid"/ },
    { what: 'discovery with a query', method: 'GET', path: '/.well-known/openid-configuration?x=1', status: 400 },
    { what: 'sso callback unknown field', method: 'GET', path: '/api/v1/auth/oidc/nope/callback?code=x&admin=true', status: 400, message: /unknown field "admin"/ },
  );
  return c;
}

for (const kind of databaseKinds()) {
  describe(`bad input (${kind})`, () => {
    test('every bad request gets a 4xx with a clear error body, and no table changes', async () => {
      const t = await startServer({ database: kind });
      await t.user('viewer-one');
      await t.call('POST', '/api/v1/teams', { token: t.adminToken, body: { name: 'ml', owner: 'admin' } });
      await t.call('POST', '/api/v1/teams/ml/workspaces', { token: t.adminToken, body: { name: 'kept', profile: 'small', start: false } });
      await t.call('POST', '/api/v1/gpu-pools', { token: t.adminToken, body: { name: 'pool1', gpuType: 'a100', size: 2 } });
      assert.equal((await t.call('POST', '/api/v1/teams/ml/volumes', { token: t.adminToken, body: { name: 'kept-vol', size: '1Gi' } })).status, 201);
      await t.call('POST', '/api/v1/teams', { token: t.adminToken, body: { name: 'other', owner: 'admin' } });
      assert.equal((await t.call('POST', '/api/v1/teams/other/volumes', { token: t.adminToken, body: { name: 'kept-vol', size: '1Gi' } })).status, 201);
      const before = await checksums(t);
      const auditBefore = (await t.server.store.audit.list({}, { limit: 1 })).items[0]!.id;
      const failures: string[] = [];
      const all = cases();
      for (const c of all) {
        const r = await t.call(c.method, c.path, { token: t.adminToken, ...(c.body !== undefined ? { body: c.body } : {}), ...(c.rawBody !== undefined ? { rawBody: c.rawBody } : {}), ...(c.headers ? { headers: c.headers } : {}) });
        const bodyOk = typeof r.body === 'object' && r.body && typeof r.body.error?.code === 'string' && typeof r.body.error?.message === 'string' && r.body.error.message.length > 5;
        if (r.status < 400 || r.status >= 500) failures.push(`${c.what}: HTTP ${r.status}`);
        else if (c.status && r.status !== c.status) failures.push(`${c.what}: HTTP ${r.status}, expected ${c.status} (${r.body?.error?.message})`);
        else if (!bodyOk) failures.push(`${c.what}: no uniform error body: ${JSON.stringify(r.body).slice(0, 200)}`);
        else if (c.message && !c.message.test(r.body.error.message)) failures.push(`${c.what}: message ${JSON.stringify(r.body.error.message)} does not match ${c.message}`);
      }
      assert.deepEqual(failures, []);
      assert.deepEqual(await checksums(t), before, 'a refused request changed a table');
      const audited = await t.server.store.audit.list({}, { limit: 1000 });
      const newRows = audited.items.filter((e) => e.id > auditBefore);
      // reads leave none: only changes are audited
      assert.equal(newRows.length, all.filter((c) => c.method !== 'GET').length, 'each refused attempt leaves one audit row');
      assert.ok(newRows.every((e) => e.result !== 'ok'));
    });
  });
}

import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { describe, test } from 'node:test';
import { databaseKinds, startServer } from './helpers.js';

/** A GET from a chosen loopback source address (127.0.0.0/8 is all local on Linux). */
function getFrom(url: string, path: string, localAddress: string, headers: Record<string, string>): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url + path, { localAddress, headers }, (res) => {
      let data = '';
      res.on('data', (c) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: data ? JSON.parse(data) : undefined }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A POST of JSON from a chosen loopback source address. */
function postFrom(url: string, path: string, localAddress: string, body: unknown): Promise<{ status: number; body: any; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url + path, { method: 'POST', localAddress, headers: { 'content-type': 'application/json' } }, (res) => {
      let data = '';
      res.on('data', (c) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: data ? JSON.parse(data) : undefined, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

for (const kind of databaseKinds()) {
  describe(`identity (${kind})`, () => {
    test('trusted header: ignored from an untrusted address, registers the user and their team from a trusted one', async () => {
      const t = await startServer({ database: kind, flags: { 'auth.header': 'kubeflow-userid', 'auth.trustedProxies': ['127.0.0.2'], 'auth.headerPrefix': 'accounts.google.com:' } });
      await t.user('jane');
      const header = { 'kubeflow-userid': 'accounts.google.com:Jane@Example.com' };
      const untrusted = await getFrom(t.url, '/api/v1/me', '127.0.0.1', header);
      assert.equal(untrusted.status, 401);
      assert.equal((await t.server.store.users.byExternalSubject('Jane@Example.com')), undefined);

      const first = await getFrom(t.url, '/api/v1/me', '127.0.0.2', header);
      assert.equal(first.status, 200);
      assert.equal(first.body.via, 'header');
      assert.equal(first.body.user.username, 'jane-2', 'collides with local user jane, so gets a suffix');
      assert.equal(first.body.user.externalSubject, 'Jane@Example.com');
      assert.deepEqual(first.body.teams, [{ name: 'jane-2', role: 'owner', personal: true }]);
      const again = await getFrom(t.url, '/api/v1/me', '127.0.0.2', header);
      assert.equal(again.body.user.id, first.body.user.id, 'recognised by external subject the second time');

      const odd = await getFrom(t.url, '/api/v1/me', '127.0.0.2', { 'kubeflow-userid': 'accounts.google.com:Ünïcode.Nåme+tag@corp' });
      assert.equal(odd.status, 200);
      assert.match(odd.body.user.username, /^[a-z][a-z0-9-]*[a-z0-9]$/);
      const bearerWins = await getFrom(t.url, '/api/v1/me', '127.0.0.2', { ...header, authorization: `Bearer ${t.adminToken}` });
      assert.equal(bearerWins.body.user.username, 'admin');
    });

    test('the header without trusted proxies is a configuration error', async () => {
      await assert.rejects(startServer({ database: kind, flags: { 'auth.header': 'kubeflow-userid' } }), /trustedProxies is empty/);
    });

    test('tokens: shown once, hashed at rest, expire, revoke', async () => {
      const t = await startServer({ database: kind });
      const token = await t.user('tess');
      const created = await t.call('POST', '/api/v1/me/tokens', { token, body: { name: 'short', expiresIn: '1s' } });
      assert.equal(created.status, 201);
      const short = created.body.token as string;
      assert.match(short, /^atr_[A-Za-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
      const secret = short.slice('atr_'.length + 13);
      const rows = await t.server.store.db.selectFrom('tokens').select(['secret_hash']).execute();
      assert.ok(rows.every((r) => !short.includes(r.secret_hash) && !r.secret_hash.includes(secret)));
      // (whether a fresh token works is checked below with one that lives longer; this one may already be gone on a busy machine)
      const listed = await t.call('GET', '/api/v1/me/tokens', { token });
      assert.ok(!JSON.stringify(listed.body).includes(secret), 'a list never shows secrets');
      await new Promise((r) => setTimeout(r, 1100));
      const expired = await t.call('GET', '/api/v1/me', { token: short });
      assert.equal(expired.status, 401);
      assert.match(expired.body.error.message, /expired/);

      const other = (await t.call('POST', '/api/v1/me/tokens', { token, body: { name: 'other' } })).body;
      assert.equal((await t.call('DELETE', `/api/v1/me/tokens/${other.info.id}`, { token })).status, 204);
      assert.equal((await t.call('GET', '/api/v1/me', { token: other.token })).status, 401);
      const tampered = token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA');
      assert.equal((await t.call('GET', '/api/v1/me', { token: tampered })).status, 401);
      assert.equal((await t.call('GET', '/api/v1/me', { headers: { authorization: 'Basic abc' } })).status, 401);
      // someone else's token id cannot be revoked
      const mine = (await t.call('POST', '/api/v1/me/tokens', { token, body: { name: 'mine' } })).body;
      assert.equal((await t.call('DELETE', `/api/v1/me/tokens/${mine.info.id}`, { token: t.adminToken })).status, 404);
      assert.equal((await t.call('GET', '/api/v1/me', { token: mine.token })).status, 200);
    });

    test('disabling a user ends sessions, revokes tokens and stops their workspaces', async () => {
      const t = await startServer({ database: kind });
      const token = await t.user('dora');
      const login = await fetch(`${t.url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'dora', password: 'pw-dora-secret' }) });
      const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
      assert.equal((await t.call('GET', '/api/v1/me', { headers: { cookie } })).status, 200);
      assert.equal((await t.call('POST', '/api/v1/teams/dora/workspaces', { token, body: { name: 'busy', profile: 'small' } })).status, 201);
      const r = await t.call('PATCH', '/api/v1/users/dora', { token: t.adminToken, body: { disabled: true } });
      assert.equal(r.status, 200);
      assert.equal(r.body.disabled, true);
      assert.equal((await t.call('GET', '/api/v1/me', { token })).status, 401);
      assert.equal((await t.call('GET', '/api/v1/me', { headers: { cookie } })).status, 401);
      const relogin = await t.call('POST', '/api/v1/auth/login', { body: { username: 'dora', password: 'pw-dora-secret' } });
      assert.equal(relogin.status, 403);
      assert.equal(relogin.body.error.code, 'account_disabled');
      const ws = await t.call('GET', '/api/v1/teams/dora/workspaces/busy', { token: t.adminToken });
      assert.equal(ws.body.desired, 'stopped');
      const usage = await t.call('GET', '/api/v1/teams/dora/usage', { token: t.adminToken });
      assert.equal(usage.body.usage.cpu, '0');
      // re-enabling does not bring old tokens back
      await t.call('PATCH', '/api/v1/users/dora', { token: t.adminToken, body: { disabled: false } });
      assert.equal((await t.call('GET', '/api/v1/me', { token })).status, 401);
      assert.equal((await t.call('PATCH', '/api/v1/users/admin', { token: t.adminToken, body: { disabled: true } })).status, 409, 'no self-lockout');
    });

    test('sessions: host-only HttpOnly cookie, CSRF checks on changes, logout ends the session', async () => {
      const t = await startServer({ database: kind });
      await t.user('cora');
      const login = await fetch(`${t.url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'cora', password: 'pw-cora-secret' }) });
      assert.equal(login.status, 200);
      const setCookie = login.headers.get('set-cookie')!;
      // 127.0.0.1 is a secure context to browsers even over plain HTTP: the cookie is __Host- prefixed
      assert.match(setCookie, /^__Host-atrium_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+; Secure$/);
      assert.doesNotMatch(setCookie, /Domain=/i);
      const cookie = setCookie.split(';')[0]!;
      // a cookie tossed from a sibling origin under another name is never read, one under the same name makes the request refused
      const value = cookie.split('=')[1]!;
      assert.equal((await t.call('GET', '/api/v1/me', { headers: { cookie: `atrium_session=${value}` } })).status, 401);
      assert.equal((await t.call('GET', '/api/v1/me', { headers: { cookie: `atrium_session=tossed; ${cookie}` } })).body.user.username, 'cora');
      const twice = await t.call('GET', '/api/v1/me', { headers: { cookie: `__Host-atrium_session=tossed; ${cookie}` } });
      assert.equal(twice.status, 400);
      assert.equal(twice.body.error.code, 'duplicate_cookie');
      // plain HTTP to a name browsers do not treat as secure: no Secure attribute, which such a browser would refuse, and the plain name
      const lan = await new Promise<string>((resolve, reject) => {
        const req = httpRequest(`${t.url}/api/v1/auth/login`, { method: 'POST', headers: { host: 'atrium.lan:8080', 'content-type': 'application/json' } }, (res) => {
          res.resume();
          resolve(String(res.headers['set-cookie']));
        });
        req.on('error', reject);
        req.end(JSON.stringify({ username: 'cora', password: 'pw-cora-secret' }));
      });
      assert.match(lan, /^atrium_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+$/);
      const body = { name: 'from-browser' };
      const origin = t.url;
      assert.equal((await t.call('GET', '/api/v1/me', { headers: { cookie } })).status, 200);
      const noOrigin = await t.call('POST', '/api/v1/me/tokens', { headers: { cookie }, body });
      assert.equal(noOrigin.status, 403);
      assert.equal(noOrigin.body.error.code, 'csrf');
      assert.equal((await t.call('POST', '/api/v1/me/tokens', { headers: { cookie, origin: 'http://evil.example' }, body })).status, 403);
      assert.equal((await t.call('POST', '/api/v1/me/tokens', { headers: { cookie, origin, 'sec-fetch-site': 'cross-site' }, body })).status, 403);
      assert.equal((await t.call('POST', '/api/v1/me/tokens', { headers: { cookie, 'sec-fetch-site': 'same-site' }, body })).status, 403);
      assert.equal((await t.call('POST', '/api/v1/me/tokens', { headers: { cookie, origin }, body })).status, 201);
      assert.equal((await t.call('POST', '/api/v1/me/tokens', { headers: { cookie, 'sec-fetch-site': 'same-origin' }, body })).status, 201);
      const crossLogin = await t.call('POST', '/api/v1/auth/login', { headers: { 'sec-fetch-site': 'cross-site' }, body: { username: 'cora', password: 'pw-cora-secret' } });
      assert.equal(crossLogin.status, 403, 'login CSRF is refused too');
      assert.equal((await t.call('POST', '/api/v1/auth/logout', { headers: { cookie, origin } })).status, 200);
      assert.equal((await t.call('GET', '/api/v1/me', { headers: { cookie } })).status, 401);
    });

    test('login is rate limited per account and address, and says when to retry', async () => {
      const t = await startServer({ database: kind, flags: { 'auth.loginAttempts': 3 } });
      await t.user('rita');
      for (let i = 0; i < 3; i++) {
        const r = await t.call('POST', '/api/v1/auth/login', { body: { username: 'rita', password: 'wrong-password' } });
        assert.equal(r.status, 401);
        assert.equal(r.body.error.message, 'wrong username or password');
      }
      const limited = await t.call('POST', '/api/v1/auth/login', { body: { username: 'rita', password: 'pw-rita-secret' } });
      assert.equal(limited.status, 429);
      assert.equal(limited.body.error.code, 'rate_limited');
      assert.ok(Number(limited.headers.get('retry-after')) > 0);
      const unknown = await t.call('POST', '/api/v1/auth/login', { body: { username: 'nobody-here', password: 'x' } });
      assert.equal(unknown.status, 401);
      assert.equal(unknown.body.error.message, 'wrong username or password', 'unknown and wrong read the same');
    });

    test('guessing one password from 100 addresses is throttled, and its owner still signs in from where they did before', async () => {
      const t = await startServer({ database: kind });
      await t.user('vera');
      const login = (address: string, password: string) => postFrom(t.url, '/api/v1/auth/login', `127.0.0.${address}`, { username: 'vera', password });
      // vera signed in from 127.0.0.200 before
      assert.equal((await login('200', 'pw-vera-secret')).status, 200);
      const answers: number[] = [];
      let told = '';
      for (let i = 2; i < 102; i++) {
        const r = await login(String(i), `guess-${i}`);
        answers.push(r.status);
        if (r.status === 429) told = `${r.body.error.message} (Retry-After: ${String(r.headers['retry-after'])})`;
      }
      const checked = answers.filter((s) => s === 401).length;
      assert.equal(answers.filter((s) => s === 429).length + checked, 100);
      assert.ok(checked <= 15, `only a few of the 100 guesses were checked: ${checked}`);
      assert.match(told, /^too many failed attempts; try again in (\d+)s \(Retry-After: \1\)$/);
      // the right password from an address of the attacker's is refused alike while the account is closed
      assert.equal((await login('150', 'pw-vera-secret')).status, 429);
      // from where she signed in before, vera is not kept out
      assert.equal((await login('200', 'pw-vera-secret')).status, 200);
    });
  });
}

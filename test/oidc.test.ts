import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { loadConfig } from '../src/config/index.js';
import { createServer } from '../src/server/index.js';
import { freePort, startServer, waitUntil } from './helpers.js';
import { startOidcProvider, TestBrowser, type TestProvider } from './oidc.js';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

/**
 * Single sign-on against real OpenID providers (`oidc-provider`, two of
 * them, in this process on loopback): the browser's whole round trip,
 * refusals, group-to-team sync, and what must never pass (a replayed state).
 */

test('OpenID Connect sign-in', async (suite) => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const providers: TestProvider[] = [];
  after(async () => {
    for (const p of providers) await p.close();
  });
  const corp = await startOidcProvider({
    clientId: 'atrium',
    clientSecret: 'corp-client-secret-5b0f',
    redirectUris: [`${base}/api/v1/auth/oidc/corp/callback`],
    postLogoutRedirectUris: [`${base}/login`],
    accounts: [
      { sub: 'u-ada', email: 'ada@example.com', email_verified: true, name: 'Ada L', preferred_username: 'ada', groups: ['ml-eng', 'cv-readers'] },
      { sub: 'u-eve', email: 'eve@elsewhere.org', email_verified: true, name: 'Eve', groups: [] },
      { sub: 'u-carol', email: 'carol@example.com', email_verified: true, name: 'Carol', preferred_username: 'carol', groups: [] },
      { sub: 'u-mallory', email: 'mallory@example.com', email_verified: false, name: 'Mallory', groups: [] },
    ],
  });
  providers.push(corp);
  const partner = await startOidcProvider({
    clientId: 'atrium-partner',
    clientSecret: 'partner-client-secret-77aa',
    redirectUris: [`${base}/api/v1/auth/oidc/partner/callback`],
    accounts: [{ sub: 'p-1', email: 'bob@partner.test', email_verified: true, name: 'Bob', preferred_username: 'bob', groups: ['contractors'] }],
  });
  providers.push(partner);

  const t = await startServer({
    env: { ATRIUM_LOG_LEVEL: process.env.DEBUG_LOG ?? 'fatal' },
    flags: {
      'listen.port': port,
      'auth.oidc': [
        {
          name: 'corp', displayName: 'Corp SSO', issuer: corp.issuer, clientId: 'atrium', clientSecret: 'corp-client-secret-5b0f',
          scopes: ['openid', 'email', 'profile', 'groups'],
          allow: { emailDomains: ['example.com'] },
          groups: { 'ml-eng': { team: 'ml', role: 'editor' }, 'cv-readers': { team: 'cv', role: 'viewer' } },
        },
        { name: 'partner', displayName: 'Partner', issuer: partner.issuer, clientId: 'atrium-partner', clientSecret: 'partner-client-secret-77aa', scopes: ['openid', 'email', 'profile', 'groups'], allow: { groups: ['contractors'] } },
      ],
    },
  });
  const admin = t.adminToken;
  await t.user('owner');
  for (const team of ['ml', 'cv', 'data']) assert.equal((await t.call('POST', '/api/v1/teams', { token: admin, body: { name: team, owner: 'owner' } })).status, 201);
  const me = async (b: TestBrowser) => {
    const r = await fetch(`${base}/api/v1/me`, { headers: { cookie: b.cookieHeader(base) } });
    return { status: r.status, body: (await r.json()) };
  };
  const signIn = async (provider: string, account: string, next = '/teams') => {
    const b = new TestBrowser();
    const hops = await b.signIn(`${base}/api/v1/auth/oidc/${provider}/login?next=${encodeURIComponent(next)}`, account, (h) => h.url.startsWith(`${base}/teams`) || h.url.startsWith(`${base}/workspaces`));
    return { b, hops, last: hops.at(-1)! };
  };

  await suite.test('the sign-in page lists both providers', async () => {
    const r = await t.call('GET', '/api/v1/auth/providers');
    assert.deepEqual(r.body.items, [
      { name: 'corp', displayName: 'Corp SSO', login: '/api/v1/auth/oidc/corp/login' },
      { name: 'partner', displayName: 'Partner', login: '/api/v1/auth/oidc/partner/login' },
    ]);
  });

  await suite.test('a first sign-in through each provider registers the person, with their personal team, and lands where they were going', async () => {
    const { b, hops } = await signIn('corp', 'u-ada');
    const first = new URL(hops[0]!.location!);
    assert.equal(first.origin, corp.issuer);
    assert.equal(first.searchParams.get('code_challenge_method'), 'S256');
    for (const p of ['state', 'nonce', 'code_challenge']) assert.ok(first.searchParams.get(p), p);
    const back = hops.find((h) => h.url.startsWith(`${base}/api/v1/auth/oidc/corp/callback`))!;
    assert.equal(back.status, 302);
    assert.equal(back.location, `${base}/teams`);
    const who = await me(b);
    assert.equal(who.status, 200);
    assert.equal(who.body.user.username, 'ada');
    assert.equal(who.body.via, 'session');
    assert.ok(who.body.teams.some((x: { name: string; personal: boolean }) => x.name === 'ada' && x.personal));
    const bob = await signIn('partner', 'p-1');
    assert.equal((await me(bob.b)).body.user.username, 'bob');
  });

  await suite.test("groups become team memberships at each sign-in: added, changed and removed, while a membership granted by hand stays", async () => {
    const member = async (team: string) => ((await t.call('GET', `/api/v1/teams/${team}/members`, { token: admin })).body.items as Array<{ username: string; role: string; since: string; group: string | null }>).find((m) => m.username === 'ada');
    assert.deepEqual(await member('ml'), { username: 'ada', role: 'editor', since: (await member('ml'))!.since, group: 'corp:ml-eng' });
    assert.equal((await member('cv'))?.role, 'viewer');
    // by hand: data (viewer); and ml raised to owner by hand makes it the hand's
    assert.equal((await t.call('PUT', '/api/v1/teams/data/members/ada', { token: admin, body: { role: 'viewer' } })).status, 200);
    corp.accounts.get('u-ada')!.groups = ['ml-eng'];
    await signIn('corp', 'u-ada');
    assert.equal((await member('cv')), undefined, 'cv-readers is gone, and so is the membership it granted');
    assert.equal((await member('ml'))?.role, 'editor');
    assert.deepEqual(await member('data'), { username: 'ada', role: 'viewer', since: (await member('data'))!.since, group: null }, 'the hand-granted membership stays');
    corp.accounts.get('u-ada')!.groups = [];
    await signIn('corp', 'u-ada');
    assert.equal(await member('ml'), undefined);
    assert.equal((await member('data'))?.role, 'viewer');
  });

  await suite.test('someone the allow-list does not name is refused with a page saying so, and an audit row', async () => {
    const { last, b } = await signIn('corp', 'u-eve');
    assert.equal(last.status, 403);
    assert.match(last.body, /You may not sign in to Atrium/);
    assert.match(last.body, /eve@elsewhere\.org may not sign in with corp/);
    assert.equal((await me(b)).status, 401);
    const unverified = await signIn('corp', 'u-mallory');
    assert.equal(unverified.last.status, 403, 'an unverified email proves no domain');
    const audit = await t.call('GET', '/api/v1/audit?action=auth.sso&result=sign_in_refused', { token: admin });
    assert.ok(audit.body.items.some((a: { actor: string }) => a.actor === 'eve@elsewhere.org'), JSON.stringify(audit.body.items));
    const users = (await t.call('GET', '/api/v1/users?limit=500', { token: admin })).body.items.map((u: { username: string }) => u.username);
    assert.ok(!users.includes('eve'), 'nobody is registered');
  });

  await suite.test('an email that a local account has does not merge the two', async () => {
    await t.user('carol');
    assert.equal((await t.call('PATCH', '/api/v1/users/carol', { token: admin, body: { email: 'carol@example.com' } })).status, 200);
    const { b } = await signIn('corp', 'u-carol');
    const who = await me(b);
    assert.equal(who.status, 200);
    assert.notEqual(who.body.user.username, 'carol');
    assert.match(who.body.user.username, /^carol-\d+$/);
  });

  await suite.test('a callback replayed, or with a state Atrium never issued, signs nobody in', async () => {
    const { hops } = await signIn('corp', 'u-ada');
    const callback = hops.find((h) => h.url.startsWith(`${base}/api/v1/auth/oidc/corp/callback`))!.url;
    const again = new TestBrowser();
    const replay = await again.request(callback);
    assert.equal(replay.status, 400);
    assert.match(replay.body, /no longer valid/);
    const forged = await again.request(`${base}/api/v1/auth/oidc/corp/callback?code=abc&state=made-up`);
    assert.equal(forged.status, 400);
    assert.equal((await me(again)).status, 401);
  });

  await suite.test('an ID token changed on its way (claims rewritten, signature kept) is refused', async () => {
    corp.tamper.idTokens = true;
    try {
      const { last, b } = await signIn('corp', 'u-ada');
      assert.equal(last.status, 400);
      assert.match(last.body, /Sign-in failed/);
      assert.equal((await me(b)).status, 401);
    } finally {
      corp.tamper.idTokens = false;
    }
    const audit = await t.call('GET', '/api/v1/audit?action=auth.sso&result=sso_invalid', { token: admin });
    assert.ok(audit.body.items.length > 0);
  });

  await suite.test('a CLI sign-in by code: started, approved in the browser after signing in with the provider, handed over once', async () => {
    const started = await t.call('POST', '/api/v1/auth/cli-logins', { body: { name: 'cli@test', provider: 'corp' } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const { code, verifyUrl, pollSecret } = started.body as { code: string; verifyUrl: string; pollSecret: string };
    assert.match(code, /^[B-DF-HJ-NP-TV-XZ]{4}-[B-DF-HJ-NP-TV-XZ]{4}$/);
    assert.deepEqual((await t.call('POST', '/api/v1/auth/cli-logins/poll', { body: { pollSecret } })).body, { state: 'pending' });
    const browser = new TestBrowser();
    const hops = await browser.signIn(verifyUrl, 'u-ada', (h) => h.url.startsWith(`${base}/cli-login`));
    assert.equal(hops.at(-1)!.url, `${base}/cli-login?code=${code}`, 'signed in with the provider, then on the page that approves the code');
    const approve = (cookie?: string) => fetch(`${base}/api/v1/auth/cli-logins/approve`, { method: 'POST', headers: { 'content-type': 'application/json', origin: base, ...(cookie ? { cookie } : {}) }, body: JSON.stringify({ code }) });
    assert.equal((await approve()).status, 401, 'nobody approves without being signed in');
    const approved = await approve(browser.cookieHeader(base));
    assert.equal(approved.status, 204, await approved.text());
    const polled = await t.call('POST', '/api/v1/auth/cli-logins/poll', { body: { pollSecret } });
    assert.equal(polled.body.state, 'approved');
    assert.equal(polled.body.user.username, 'ada');
    const token = polled.body.token as string;
    assert.equal((await t.call('GET', '/api/v1/me', { token })).body.user.username, 'ada', 'the token acts as the person who approved');
    assert.deepEqual((await t.call('POST', '/api/v1/auth/cli-logins/poll', { body: { pollSecret } })).body, { state: 'expired' }, 'handed over once');
    assert.equal((await approve(browser.cookieHeader(base))).status, 404, 'a code works once');
  });

  await suite.test('`atrium login --sso` end to end: the built CLI prints a URL and a code, the person approves it in the browser, the CLI holds their token', async () => {
    const home = mkdtempSync(join(tmpdir(), 'atrium-cli-sso-'));
    after(() => rmSync(home, { recursive: true, force: true }));
    const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config') };
    // asynchronous: this process serves the API the CLI polls
    const cli = spawn(process.execPath, [MAIN, 'login', base, '--sso', '--provider', 'corp'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    cli.stdout.on('data', (d: Buffer) => (out += d.toString()));
    cli.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => cli.once('exit', (code) => r(code)));
    const shown = await waitUntil('the CLI to print its code and URL', () => /approve the code ([A-Z]{4}-[A-Z]{4}):\s+(\S+)/.exec(err) ?? undefined, { timeoutMs: 30_000, last: () => err });
    const [, code, verifyUrl] = shown;
    const browser = new TestBrowser();
    const hops = await browser.signIn(verifyUrl!, 'u-ada', (h) => h.url.startsWith(`${base}/cli-login`));
    assert.equal(hops.at(-1)!.url, `${base}/cli-login?code=${code}`);
    // what the portal's page does when the person presses Approve
    const approved = await fetch(`${base}/api/v1/auth/cli-logins/approve`, { method: 'POST', headers: { 'content-type': 'application/json', origin: base, cookie: browser.cookieHeader(base) }, body: JSON.stringify({ code }) });
    assert.equal(approved.status, 204);
    assert.equal(await exited, 0, err);
    assert.equal(out, `Signed in to ${base} as ada.\n`);
    const whoami = spawn(process.execPath, [MAIN, 'whoami'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let who = '';
    whoami.stdout.on('data', (d: Buffer) => (who += d.toString()));
    assert.equal(await new Promise((r) => whoami.once('exit', r)), 0);
    assert.match(who, /\bada\b/);
  });

  await suite.test('client secrets appear in no API answer, audit row or table', async () => {
    const seen = [
      JSON.stringify((await t.call('GET', '/api/v1/audit?limit=500', { token: admin })).body),
      JSON.stringify((await t.call('GET', '/api/v1/auth/providers')).body),
      JSON.stringify((await t.call('GET', '/api/v1/openapi.json')).body),
    ];
    for (const table of ['users', 'sessions', 'audit', 'oidc_logins', 'memberships', 'events']) seen.push(JSON.stringify((await sql`select * from ${sql.table(table)}`.execute(t.server.store.db)).rows));
    for (const secret of ['corp-client-secret-5b0f', 'partner-client-secret-77aa']) assert.ok(!seen.some((text) => text.includes(secret)), secret);
  });

  await suite.test("signing out ends the Atrium session and then the provider's: the next sign-in asks for the person again", async () => {
    const asksLogin = (hops: Array<{ body: string }>) => hops.some((h) => h.body.includes('name="prompt" value="login"'));
    const { b, hops } = await signIn('corp', 'u-carol');
    assert.ok(asksLogin(hops), 'the first sign-in asks who it is');
    // while the provider's session lasts, signing in again passes straight through
    const again = await b.signIn(`${base}/api/v1/auth/oidc/corp/login`, 'u-carol', (h) => h.url === `${base}/`);
    assert.ok(!asksLogin(again), 'the provider remembered the person');
    const out = await fetch(`${base}/api/v1/auth/logout`, { method: 'POST', headers: { cookie: b.cookieHeader(base), origin: base } });
    assert.equal(out.status, 200);
    const { endSession } = (await out.json()) as { endSession: string };
    const end = new URL(endSession);
    assert.equal(end.origin, corp.issuer);
    assert.equal(end.searchParams.get('client_id'), 'atrium');
    assert.equal(end.searchParams.get('post_logout_redirect_uri'), `${base}/login`);
    assert.equal((await me(b)).status, 401, 'the Atrium session has ended');
    // the provider asks to confirm (as a person would see it), then sends the browser back to Atrium's sign-in page
    const confirm = await b.request(endSession);
    assert.equal(confirm.status, 200);
    const form = /<form[^>]*action="([^"]+)"/i.exec(confirm.body)!;
    const fields = new URLSearchParams([...confirm.body.matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    fields.set('logout', 'yes');
    const done = await b.request(new URL(form[1]!, endSession).href, { method: 'POST', body: fields.toString() });
    assert.equal(done.status, 303);
    assert.equal(done.location, `${base}/login`);
    const after = await b.signIn(`${base}/api/v1/auth/oidc/corp/login`, 'u-carol', (h) => h.url === `${base}/`);
    assert.ok(asksLogin(after), "the provider's session ended with Atrium's");
    // a password sign-in has no provider session to end
    const signedIn = await t.call('POST', '/api/v1/auth/login', { body: { username: 'owner', password: 'pw-owner-secret' } });
    const cookie = signedIn.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const local = await t.call('POST', '/api/v1/auth/logout', { headers: { cookie, origin: base } });
    assert.deepEqual(local.body, { endSession: null });
  });

  await suite.test('an admin disables an SSO-registered account like any other', async () => {
    assert.equal((await t.call('PATCH', '/api/v1/users/bob', { token: admin, body: { disabled: true } })).status, 200);
    const { last, b } = await signIn('partner', 'p-1');
    assert.equal(last.status, 403);
    assert.match(last.body, /disabled/);
    assert.equal((await me(b)).status, 401);
  });
});

test('a provider Atrium cannot discover, or a secret file it cannot read, stops the start with the reason', async () => {
  const closed = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'atrium-oidc-bad-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));
  const config = loadConfig({ env: {}, flags: { 'runtime.kind': 'none', dataDir, 'auth.oidc': [{ name: 'corp', displayName: 'Corp', issuer: `http://127.0.0.1:${closed}`, clientId: 'atrium' }] } });
  await assert.rejects(createServer(config), /auth\.oidc\[0\]\.issuer: cannot discover http:\/\/127\.0\.0\.1:\d+/);
  assert.throws(
    () => loadConfig({ env: {}, flags: { 'runtime.kind': 'none', 'auth.oidc': [{ name: 'corp', displayName: 'Corp', issuer: 'https://id.example', clientId: 'atrium', clientSecretFile: '/nonexistent/secret' }] } }),
    /auth\.oidc\[0\]\.clientSecretFile: cannot read \/nonexistent\/secret/,
  );
  assert.throws(
    () => loadConfig({ env: {}, flags: { 'runtime.kind': 'none', 'auth.oidc': [{ name: 'corp', displayName: 'Corp', issuer: 'http://id.example', clientId: 'atrium' }] } }),
    /auth\.oidc\[0\]\.issuer: http:\/\/id\.example must be https/,
  );
});

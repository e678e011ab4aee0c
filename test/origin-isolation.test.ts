import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { chromium } from 'playwright-core';
import { waitUntil } from './helpers.js';
import { sandboxesAvailable, startSandboxServer, type SandboxServer } from './sandbox.js';

const CHROMIUM = '/usr/bin/chromium';

function browserAvailable(): true | string {
  const sandboxes = sandboxesAvailable();
  if (sandboxes !== true) return sandboxes;
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI) throw new Error(`${CHROMIUM} is missing; scripts/deps.sh test installs it`);
  return 'needs Debian chromium (scripts/deps.sh test)';
}
const available = browserAvailable();

/** A GET straight to a workspace's app through its socket, past the proxy; the app's status. */
function appGet(t: SandboxServer, wsId: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: join(t.dataDir, 'local', 'run', wsId, 'http.sock'), path, headers: { host: 'localhost' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * A page a workspace serves, as hostile code in it would write it: it tries
 * to read and change things through the portal's API and another
 * workspace's origin, with whatever the browser holds, and reports.
 */
const PROBE = `<!doctype html><title>probe</title><script>
const q = new URLSearchParams(location.search);
const portal = q.get('portal'), other = q.get('other');
async function attempt(fn) { try { return await fn(); } catch (e) { return 'blocked: ' + e.name; } }
window.results = (async () => ({
  cookies: document.cookie,
  readPortal: await attempt(async () => (await fetch(portal + '/api/v1/me', { credentials: 'include' })).status),
  readPortalNoCors: await attempt(async () => { const r = await fetch(portal + '/api/v1/me', { credentials: 'include', mode: 'no-cors' }); return r.type + ':' + (await r.text()).length; }),
  createToken: await attempt(async () => (await fetch(portal + '/api/v1/me/tokens', { method: 'POST', credentials: 'include', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ name: 'stolen' }) })).type),
  stopOther: await attempt(async () => (await fetch(portal + '/api/v1/teams/mia/workspaces/web2/stop', { method: 'POST', credentials: 'include', mode: 'no-cors' })).type),
  readOther: await attempt(async () => (await fetch(other + '/w/mia/web2/echo', { credentials: 'include' })).status),
  changeOther: await attempt(async () => (await fetch(other + '/w/mia/web2/change-by-stranger', { method: 'POST', credentials: 'include', mode: 'no-cors', body: 'x' })).type),
  socketOther: await new Promise((resolve) => { const s = new WebSocket(other.replace('http', 'ws') + '/w/mia/web2/socket-by-stranger'); s.onopen = () => resolve('open'); s.onerror = () => resolve('blocked'); }),
}))();
</script>`;

test('page script on a workspace origin cannot act through the portal or another workspace', { skip: available === true ? false : available }, async () => {
  const t = await startSandboxServer();
  const port = new URL(t.url).port;
  const mia = await t.user('mia');
  await t.addKey(mia, 'mia');
  for (const name of ['web', 'web2']) {
    const r = await t.call('POST', '/api/v1/teams/mia/workspaces', { token: mia, body: { name, profile: 'web' } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  for (const ref of ['mia/web', 'mia/web2']) assert.equal((await t.waitPhase(mia, ref, ['running', 'failed'])).phase, 'running');
  const written = await t.sh('mia/web', `echo ${Buffer.from(PROBE).toString('base64')} | base64 -d > ~/probe.html && echo ok`);
  assert.equal(written.stdout.trim(), 'ok', written.stderr);

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(60_000);
    const portal = `http://localhost:${port}`;
    const other = `http://web2--mia.localhost:${port}`;
    // sign in on the portal, then open both workspaces the way a person does, so the browser holds every cookie there is
    await page.goto(`${portal}/login?next=${encodeURIComponent('/w/mia/web2/echo')}`);
    await page.getByLabel('Username').fill('mia');
    await page.getByLabel('Password').fill('pw-mia-secret');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${other}/w/mia/web2/echo`);
    await page.goto(`${portal}/w/mia/web/probe.html?portal=${encodeURIComponent(portal)}&other=${encodeURIComponent(other)}`);
    await page.waitForURL(/^http:\/\/web--mia\.localhost:\d+\/w\/mia\/web\/probe\.html/);
    const results = await page.evaluate(() => (window as unknown as { results: Promise<Record<string, unknown>> }).results);

    assert.equal(results.cookies, '', 'Atrium cookies are HttpOnly and host-only');
    assert.match(String(results.readPortal), /^blocked/, 'the portal API cannot be read cross-origin');
    assert.equal(results.readPortalNoCors, 'opaque:0');
    assert.match(String(results.readOther), /^blocked/, "another workspace's origin cannot be read");
    assert.equal(results.socketOther, 'blocked');
    // what the requests that did leave the page achieved: nothing
    const tokens = (await t.call('GET', '/api/v1/me/tokens', { token: mia })).body.items as Array<{ name: string }>;
    assert.deepEqual(tokens.filter((k) => k.name === 'stolen'), []);
    assert.equal((await t.call('GET', '/api/v1/teams/mia/workspaces/web2', { token: mia })).body.desired, 'running');
    // The app logs each request as it comes, and the host-side log writer copies that to the log when it gets to it: a
    // request of the test's own, sent once the page has done all it does, marks how far the log must have got to hold
    // whatever of the page's reached web2 (the app answers a request only after logging it).
    const marker = `/w/mia/web2/marker-${randomUUID()}`;
    assert.equal(await appGet(t, await t.wsId('mia/web2'), marker), 404);
    let log = '';
    await waitUntil("the test's own request in web2's log", async () => {
      log = await (await fetch(`${t.url}/api/v1/teams/mia/workspaces/web2/logs?tail=500`, { headers: { authorization: `Bearer ${mia}` } })).text();
      return log.includes(`access "GET ${marker} `);
    }, { timeoutMs: 30_000, last: () => log });
    assert.match(log, /access "GET \/w\/mia\/web2\/echo/, 'the log shows what did arrive');
    assert.doesNotMatch(log, /by-stranger/, 'nothing from the other origin reached web2');
    const audit = (await t.call('GET', '/api/v1/audit?limit=100', { token: t.adminToken })).body.items as Array<{ action: string; result: string }>;
    assert.ok(audit.some((a) => a.result === 'csrf'), 'the refused changes are in the audit log');
  } finally {
    await browser.close();
  }
});

/**
 * A page that tosses cookies for the parent domain, as hostile code on any
 * workspace origin can: a session of the attacker's for the portal's
 * `/api/v1/me`, and a bogus app cookie on the victim's workspace path,
 * under every name Atrium's cookies go by. Browsers send a cookie with a
 * longer path first.
 */
const TOSS = `<!doctype html><title>toss</title><script>
const q = new URLSearchParams(location.search);
const session = q.get('session'), ws = q.get('ws'), domain = q.get('domain');
for (const prefix of ['', '__Host-', '__Secure-']) {
  const secure = prefix ? '; Secure' : '';
  document.cookie = prefix + 'atrium_session=' + session + '; Domain=' + domain + '; Path=/api/v1/me' + secure;
  document.cookie = prefix + 'atrium_session=' + session + '; Domain=' + domain + '; Path=/api' + secure;
  document.cookie = prefix + 'atrium_app=tossed; Domain=' + domain + '; Path=' + ws + secure;
}
window.tossed = document.cookie;
</script>`;

/**
 * Cookie tossing needs a real parent domain: browsers refuse `Domain=localhost`
 * (an unlisted top-level name counts as a public suffix), so the workspaces are
 * served on `*.atrium.test`, which Chromium resolves to this machine. Over
 * HTTPS Atrium's cookies are `__Host-` cookies, which no other origin can set
 * or shadow; over plain HTTP a tossed duplicate is refused once and deleted.
 */
for (const scheme of ['https', 'http'] as const) {
  test(`cookies tossed from a workspace page over ${scheme} neither switch the portal session nor lock the victim out`, { skip: available === true ? false : available }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'atrium-toss-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const tls: Record<string, string> = {};
    if (scheme === 'https') {
      tls['tls.cert'] = join(dir, 'cert.pem');
      tls['tls.key'] = join(dir, 'key.pem');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=atrium.test', '-addext', 'subjectAltName=DNS:atrium.test,DNS:*.atrium.test,IP:127.0.0.1', '-keyout', tls['tls.key'], '-out', tls['tls.cert']], { stdio: 'ignore' });
      // this test's own clients talk to the throwaway certificate above
      process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    }
    const t = await startSandboxServer({ 'proxy.appsDomain': 'atrium.test', ...tls });
    const port = new URL(t.url).port;
    const portal = `${scheme}://atrium.test:${port}`;
    const alice = await t.user('alice');
    await t.user('mallory');
    await t.addKey(alice, 'alice');
    assert.equal((await t.call('POST', '/api/v1/teams/alice/workspaces', { token: alice, body: { name: 'web', profile: 'web' } })).status, 201);
    assert.equal((await t.waitPhase(alice, 'alice/web', ['running', 'failed'])).phase, 'running');
    const written = await t.sh('alice/web', `echo ${Buffer.from(TOSS).toString('base64')} | base64 -d > ~/toss.html && echo ok`);
    assert.equal(written.stdout.trim(), 'ok', written.stderr);
    // the attacker's own session, as a browser of theirs would hold it
    const login = await t.call('POST', '/api/v1/auth/login', { body: { username: 'mallory', password: 'pw-mallory-secret' } });
    const mallorySession = login.headers.get('set-cookie')!.split(';')[0]!.split('=')[1]!;

    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--host-resolver-rules=MAP atrium.test 127.0.0.1, MAP *.atrium.test 127.0.0.1'] });
    try {
      const page = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
      page.setDefaultTimeout(60_000);
      await page.goto(`${portal}/login?next=${encodeURIComponent('/')}`);
      await page.getByLabel('Username').fill('alice');
      await page.getByLabel('Password').fill('pw-alice-secret');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Workspaces', level: 1 }).waitFor();
      const me = async () => {
        const r = (await page.goto(`${portal}/api/v1/me`))!;
        return { status: r.status(), body: JSON.parse(await r.text()) as { user?: { username: string }; error?: { code: string } } };
      };
      assert.equal((await me()).body.user?.username, 'alice');

      await page.goto(`${portal}/w/alice/web/toss.html?session=${mallorySession}&domain=atrium.test&ws=${encodeURIComponent('/w/alice/web')}`);
      await page.waitForURL(new RegExp(`^${scheme}://web--alice\\.atrium\\.test:\\d+/w/alice/web/toss\\.html`));
      const tossed = await page.evaluate(() => (window as unknown as { tossed: string }).tossed);
      assert.match(tossed, /atrium_app=tossed/, `the page did toss its cookies: ${tossed}`);

      // the portal never takes the attacker's session for alice's: at most one refusal (which deletes the tossed cookies), then alice again
      const first = await me();
      assert.notEqual(first.body.user?.username, 'mallory', 'the tossed session did not replace the victim\'s');
      if (scheme === 'https') assert.equal(first.body.user?.username, 'alice', '__Host- cookies cannot be shadowed at all');
      else if (first.status !== 200) assert.equal(first.body.error?.code, 'duplicate_cookie');
      assert.equal((await me()).body.user?.username, 'alice');
      // and her workspace still opens: no sign-in loop
      const opened = await page.goto(`${portal}/w/alice/web/echo`).catch((err: Error) => err);
      assert.ok(!(opened instanceof Error), `opening the workspace failed: ${opened instanceof Error ? opened.message : ''}`);
      assert.equal(opened!.status(), 200);
      assert.match(page.url(), new RegExp(`^${scheme}://web--alice\\.atrium\\.test:\\d+/w/alice/web/echo$`));
    } finally {
      await browser.close();
    }
  });
}

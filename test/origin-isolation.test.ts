import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { sandboxesAvailable, startSandboxServer } from './sandbox.js';

const CHROMIUM = '/usr/bin/chromium';

function browserAvailable(): true | string {
  const sandboxes = sandboxesAvailable();
  if (sandboxes !== true) return sandboxes;
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI) throw new Error(`${CHROMIUM} is missing; scripts/deps.sh test installs it`);
  return 'needs Debian chromium (scripts/deps.sh test)';
}
const available = browserAvailable();

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
    const log = await (await fetch(`${t.url}/api/v1/teams/mia/workspaces/web2/logs?tail=500`, { headers: { authorization: `Bearer ${mia}` } })).text();
    assert.match(log, /access "GET \/w\/mia\/web2\/echo/, 'the log shows what did arrive');
    assert.doesNotMatch(log, /by-stranger/, 'nothing from the other origin reached web2');
    const audit = (await t.call('GET', '/api/v1/audit?limit=100', { token: t.adminToken })).body.items as Array<{ action: string; result: string }>;
    assert.ok(audit.some((a) => a.result === 'csrf'), 'the refused changes are in the audit log');
  } finally {
    await browser.close();
  }
});

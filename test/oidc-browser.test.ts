import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { chromium, type Page } from 'playwright-core';
import { DEFAULT_PORTAL_DIR } from '../src/server/index.js';
import { freePort, startServer } from './helpers.js';
import { startOidcProvider } from './oidc.js';

const CHROMIUM = '/usr/bin/chromium';

function browserAvailable(): true | string {
  const missing = [existsSync(CHROMIUM) ? '' : `${CHROMIUM} (scripts/deps.sh test installs it)`, existsSync(join(DEFAULT_PORTAL_DIR, 'index.html')) ? '' : 'the built portal (npm run build)'].filter(Boolean).join(' and ');
  if (!missing) return true;
  if (process.env.CI) throw new Error(`missing ${missing}`);
  return `needs ${missing}`;
}
const available = browserAvailable();

/**
 * Single sign-on in a real browser (headless Chromium) with two real OpenID
 * providers: from the portal's sign-in page through each provider's own
 * sign-in and consent pages back into the portal, and out again through the
 * provider's sign-out page.
 */
test('single sign-on in a browser, with two providers', { skip: available === true ? false : available, timeout: 180_000 }, async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const corp = await startOidcProvider({
    clientId: 'atrium',
    clientSecret: 'corp-browser-secret-91c2',
    redirectUris: [`${base}/api/v1/auth/oidc/corp/callback`],
    postLogoutRedirectUris: [`${base}/login`],
    accounts: [{ sub: 'u-ada', email: 'ada@example.com', email_verified: true, name: 'Ada Lovelace', preferred_username: 'ada', groups: ['ml-eng'] }],
  });
  after(() => corp.close());
  const partner = await startOidcProvider({
    clientId: 'atrium-partner',
    clientSecret: 'partner-browser-secret-3e1d',
    redirectUris: [`${base}/api/v1/auth/oidc/partner/callback`],
    accounts: [{ sub: 'p-7', email: 'bob@partner.test', email_verified: true, name: 'Bob Partner', preferred_username: 'bob', groups: [] }],
  });
  after(() => partner.close());
  const t = await startServer({
    flags: {
      'listen.port': port,
      'auth.oidc': [
        { name: 'corp', displayName: 'Corp SSO', issuer: corp.issuer, clientId: 'atrium', clientSecret: 'corp-browser-secret-91c2', scopes: ['openid', 'email', 'profile', 'groups'], groups: { 'ml-eng': { team: 'ml', role: 'editor' } } },
        { name: 'partner', displayName: 'Partner', issuer: partner.issuer, clientId: 'atrium-partner', clientSecret: 'partner-browser-secret-3e1d', scopes: ['openid', 'email', 'profile'] },
      ],
    },
  });
  assert.equal((await t.call('POST', '/api/v1/teams', { token: t.adminToken, body: { name: 'ml', owner: 'admin' } })).status, 201);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  after(() => browser.close());

  /** The portal's sign-in page, the provider's button, the provider's own pages as a person fills them in. */
  async function signIn(provider: string, issuer: string, login: string): Promise<Page> {
    const context = await browser.newContext();
    context.setDefaultTimeout(30_000);
    const page = await context.newPage();
    await page.goto(`${base}/`);
    await page.waitForURL(/\/login\?next=/);
    await page.getByRole('link', { name: `Sign in with ${provider}` }).click();
    await page.waitForURL((u) => u.origin === issuer);
    await page.locator('input[name="login"]').fill(login);
    await page.locator('input[name="password"]').fill('any');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL((u) => u.origin === base && !u.pathname.startsWith('/login'));
    await page.getByRole('heading', { name: 'Workspaces', level: 1 }).waitFor();
    return page;
  }

  const ada = await signIn('Corp SSO', corp.issuer, 'u-ada');
  await ada.getByText('Ada Lovelace').first().waitFor();
  // the group gave a membership: the team page says so
  await ada.goto(`${base}/teams/ml`);
  await ada.getByRole('cell', { name: 'group corp:ml-eng' }).waitFor();

  const bob = await signIn('Partner', partner.issuer, 'p-7');
  await bob.getByText('Bob Partner').first().waitFor();
  const who = await bob.evaluate(async () => (await (await fetch('/api/v1/me')).json()) as { user: { username: string }; via: string });
  assert.equal(who.user.username, 'bob');
  assert.equal(who.via, 'session');

  // signing out: Atrium's session, then the provider's own sign-out page, then back on the sign-in page
  await ada.getByRole('button', { name: 'Sign out' }).click();
  await ada.waitForURL((u) => u.origin === corp.issuer);
  await ada.getByRole('button', { name: 'Yes, sign me out' }).click();
  await ada.waitForURL(`${base}/login`);
  await ada.getByRole('link', { name: 'Sign in with Corp SSO' }).waitFor();
  assert.equal(await ada.evaluate(async () => (await fetch('/api/v1/me')).status), 401);
  // the provider forgot Ada too: signing in again asks who she is
  await ada.getByRole('link', { name: 'Sign in with Corp SSO' }).click();
  await ada.locator('input[name="login"]').waitFor();
});

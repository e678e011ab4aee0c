import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { DEFAULT_PORTAL_DIR } from '../src/server/index.js';
import { startServer } from './helpers.js';
import { buildImage } from './oci-image.js';
import { run, sandboxesAvailable, startSandboxServer, type SandboxServer } from './sandbox.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(import.meta.dirname, '..', 'test-output', 'portal');
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

function portalAvailable(): true | string {
  const sandboxes = sandboxesAvailable();
  if (sandboxes !== true) return sandboxes;
  const missing = [existsSync(CHROMIUM) ? '' : `${CHROMIUM} (scripts/deps.sh test installs it)`, existsSync(join(DEFAULT_PORTAL_DIR, 'index.html')) ? '' : 'the built portal (npm run build)']
    .filter(Boolean)
    .join(' and ');
  if (!missing) return true;
  if (process.env.CI) throw new Error(`missing ${missing}`);
  return `needs ${missing}`;
}
const available = portalAvailable();

/**
 * The portal in a real browser against a real server with runc sandboxes:
 * a data scientist, a team owner, a viewer and an admin each do their part
 * of the job through the pages, only with what the pages offer. Every page
 * is checked with axe-core and photographed at laptop and phone widths.
 */
test('web portal', { skip: available === true ? false : available, timeout: 600_000 }, async (suite) => {
  let t: SandboxServer;
  let browser: Browser;
  let portal: string;
  let mia: string;
  let olga: string;
  const axeFindings: string[] = [];
  const shots: string[] = [];

  {
    t = await startSandboxServer();
    portal = `http://localhost:${new URL(t.url).port}`;
    mia = await t.user('mia');
    olga = await t.user('olga');
    await t.user('vic');
    const team = await t.call('POST', '/api/v1/teams', { token: t.adminToken, body: { name: 'ml', owner: 'olga', quota: { cpu: '4', memory: '4Gi', storage: '1Gi', workspaces: 10 } } });
    assert.equal(team.status, 201, JSON.stringify(team.body));
    for (const [user, role] of [['mia', 'editor'], ['vic', 'viewer']]) {
      const r = await t.call('PUT', `/api/v1/teams/ml/members/${user}`, { token: olga, body: { role } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    // a GPU pool shared with ml, for the admin's inventory
    assert.equal((await t.call('POST', '/api/v1/gpu-pools', { token: t.adminToken, body: { name: 'dgx', gpuType: 'h100', size: 8 } })).status, 201);
    assert.equal((await t.call('PUT', '/api/v1/gpu-pools/dgx/grants/ml', { token: t.adminToken, body: { limit: 2 } })).status, 200);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    suite.after(() => browser.close());
    rmSync(SHOTS, { recursive: true, force: true });
    mkdirSync(SHOTS, { recursive: true });
  }

  /** A fresh browser context; its waits are deadlines for a loaded machine, not timing targets. */
  async function newContext(): Promise<BrowserContext> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    context.setDefaultTimeout(60_000);
    return context;
  }

  async function signIn(username: string, password = `pw-${username}-secret`): Promise<Page> {
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(`${portal}/`);
    await page.waitForURL(/\/login\?next=%2F$/);
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Workspaces', level: 1 }).waitFor();
    return page;
  }

  /** axe-core on the page as it is now; serious and critical findings fail the suite. */
  async function checkA11y(page: Page, name: string) {
    // evaluated through the DevTools protocol: the portal's CSP (rightly) refuses injected script tags
    if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(readFileSync(AXE, 'utf8'));
    const result = await page.evaluate(async () => {
      const axe = (window as unknown as { axe: { run(ctx: Document): Promise<{ violations: Array<{ id: string; impact: string; nodes: Array<{ target: string[] }> }> }> } }).axe;
      return axe.run(document);
    });
    for (const v of result.violations) {
      if (v.impact === 'serious' || v.impact === 'critical') axeFindings.push(`${name}: ${v.impact} ${v.id} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
    }
  }

  /**
   * Waits until the page shows what it has loaded: no spinner (the portal's `Loading` placeholder) and no
   * "Loading…" cell. Pages fetch after they render, so a heading being there says nothing about the rest.
   */
  async function settled(page: Page) {
    await page.waitForFunction(() => document.querySelector('.loading') === null && !Array.from(document.querySelectorAll('.muted')).some((e) => e.textContent === 'Loading…'));
  }

  /** Screenshots at 1280 px and 375 px wide (full page), and axe at both widths, of the page once it has loaded. */
  async function shoot(page: Page, name: string) {
    await settled(page);
    for (const [width, height] of [[1280, 800], [375, 812]] as const) {
      await page.setViewportSize({ width, height });
      await page.evaluate(() => window.scrollTo(0, 0));
      // laid out and painted at the new size: two animation frames, not a guess at how long that takes
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      const file = join(SHOTS, `${name}-${width}.png`);
      await page.screenshot({ path: file, fullPage: true });
      shots.push(file);
      await checkA11y(page, `${name} at ${width}px`);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  }

  await suite.test('sign in, add an SSH key, launch Jupyter with live progress, open it through the proxy, stop it', async () => {
    const page = await signIn('mia');
    await page.getByRole('heading', { name: 'No workspaces yet' }).waitFor();
    await shoot(page, 'workspaces-empty');

    // SSH key
    const keyDir = mkdtempSync(join(tmpdir(), 'atrium-portal-key-'));
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'mia@laptop', '-f', join(keyDir, 'id')]);
    const publicKey = readFileSync(join(keyDir, 'id.pub'), 'utf8');
    const fingerprint = (await run('ssh-keygen', ['-l', '-f', join(keyDir, 'id.pub')])).stdout.split(' ')[1]!;
    rmSync(keyDir, { recursive: true, force: true });
    await page.getByRole('link', { name: 'Keys & tokens' }).click();
    await page.getByLabel('Public key').fill(publicKey);
    await page.getByRole('button', { name: 'Add key' }).click();
    await page.getByText(fingerprint).waitFor();
    const keys = (await t.call('GET', '/api/v1/me/ssh-keys', { token: mia })).body.items as Array<{ fingerprint: string }>;
    assert.deepEqual(keys.map((k) => k.fingerprint), [fingerprint]);
    await shoot(page, 'keys-and-tokens');

    // launch from the profile picker: a profile beyond the quota is there, disabled, with the reason
    await page.getByRole('link', { name: 'Workspaces' }).click();
    await page.evaluate(() => ((window as unknown as { sameDocument: boolean }).sameDocument = true));
    await page.getByRole('button', { name: 'New workspace' }).first().click();
    const dialog = page.getByRole('dialog', { name: 'New workspace' });
    await dialog.getByLabel('Name').fill('lab');
    const huge = dialog.getByRole('radio', { name: /Huge/ });
    // the profiles render first and are checked against the team's quota once its usage has loaded: wait for the verdict
    await dialog.getByText(/Not available: team mia cpu: 64 requested/).waitFor();
    assert.equal(await huge.isDisabled(), true, 'a profile that would exceed the quota is disabled');
    await dialog.getByRole('radio', { name: /Lab/ }).check();
    await shoot(page, 'launch');
    await dialog.getByRole('button', { name: 'Launch' }).click();
    await dialog.waitFor({ state: 'hidden' });

    // progress from the event stream, then running, without reloading the page
    const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: 'lab', exact: true }) });
    const seen = new Set<string>();
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      const badge = (await row.locator('.badge').textContent())?.trim() ?? '';
      seen.add(badge);
      if (badge === 'running' || badge === 'failed') break;
      await page.waitForTimeout(50);
    }
    assert.ok(seen.has('running'), `lab reached running (seen: ${[...seen].join(', ')})`);
    assert.ok([...seen].some((s) => s === 'pending' || s === 'starting'), `progress was shown before running (seen: ${[...seen].join(', ')})`);
    assert.equal(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument), true, 'no page reload');
    await shoot(page, 'workspaces');

    // Open: the one-time-code redirect to the workspace's own origin, and Jupyter's own page
    const [jupyter] = await Promise.all([page.context().waitForEvent('page'), row.getByRole('link', { name: /Open/ }).click()]);
    await jupyter.waitForURL(/^http:\/\/lab--mia\.localhost:\d+\/w\/mia\/lab\//);
    // Jupyter's file browser, listing the workspace's home
    await jupyter.locator('#notebook_list').waitFor();
    assert.match(await jupyter.title(), /Home Page - Select or create a notebook/);
    await jupyter.close();

    // the workspace page: connect panel and details
    await page.getByRole('link', { name: 'lab', exact: true }).click();
    await page.getByRole('heading', { name: 'Connect' }).waitFor();
    await page.getByText(`${portal}/w/mia/lab/`).waitFor();
    await shoot(page, 'workspace');

    // stop
    await page.getByRole('button', { name: 'Stop mia/lab' }).click();
    await page.locator('.status-line .badge').filter({ hasText: 'stopped' }).waitFor({ timeout: 60_000 });
    assert.equal((await t.call('GET', '/api/v1/teams/mia/workspaces/lab', { token: mia })).body.phase, 'stopped');
    await page.context().close();
  });

  await suite.test('a keyboard-only launch works', async () => {
    const page = await signIn('mia');
    // the list loaded (mia's stopped lab in it): the page's tab order no longer changes under the keyboard
    await page.getByRole('link', { name: 'lab', exact: true }).waitFor();
    const focusedText = () => page.evaluate(() => (document.activeElement?.textContent ?? '').trim());
    const tabTo = async (text: string) => {
      for (let i = 0; i < 60; i++) {
        await page.keyboard.press('Tab');
        if ((await focusedText()) === text) return;
      }
      throw new Error(`Tab never reached "${text}"`);
    };
    await tabTo('New workspace');
    await page.keyboard.press('Enter');
    await page.getByRole('dialog', { name: 'New workspace' }).waitFor();
    // focus moves into the dialog, onto the name field
    await page.waitForFunction(() => document.activeElement?.closest('dialog') !== null && document.activeElement?.tagName === 'INPUT');
    await page.keyboard.type('kb-lab');
    assert.equal(await page.getByRole('dialog').getByLabel('Name').inputValue(), 'kb-lab');
    // the profiles checked against the quota: until then a radio may still turn disabled (and drop focus) under the arrows
    await page.getByRole('dialog').getByText(/Not available: team mia cpu: 64 requested/).waitFor();
    // into the profile group, then arrows to the Tiny profile
    for (let i = 0; i < 10 && !(await page.evaluate(() => (document.activeElement as HTMLInputElement | null)?.type === 'radio')); i++) await page.keyboard.press('Tab');
    for (let i = 0; i < 12; i++) {
      if (await page.evaluate(() => (document.activeElement as HTMLInputElement).value === 'tiny')) break;
      await page.keyboard.press('ArrowDown');
    }
    assert.equal(await page.evaluate(() => (document.activeElement as HTMLInputElement).value), 'tiny');
    await page.keyboard.press('Space');
    await tabTo('Launch');
    await page.keyboard.press('Enter');
    await page.getByRole('dialog', { name: 'New workspace' }).waitFor({ state: 'hidden' });
    const ws = await t.waitPhase(mia, 'mia/kb-lab', ['running', 'failed']);
    assert.equal(ws.profile, 'tiny');
    assert.equal(ws.phase, 'running');
    assert.equal((await t.call('DELETE', '/api/v1/teams/mia/workspaces/kb-lab?purge=true', { token: mia })).status, 204);
    await page.context().close();
  });

  await suite.test("a team owner sees the team's quota bars move when a workspace launches", async () => {
    const page = await signIn('olga');
    await page.getByRole('link', { name: 'Teams' }).click();
    await page.getByRole('heading', { name: 'Teams', level: 1 }).waitFor();
    await shoot(page, 'teams');
    await page.getByRole('link', { name: 'ml', exact: true }).first().click();
    await page.waitForURL(/\/teams\/ml$/);
    await page.getByRole('heading', { name: 'Quota and usage' }).waitFor();
    const cpu = page.getByRole('meter', { name: /^CPU/ });
    const workspaces = page.getByRole('meter', { name: /^Workspaces/ });
    const before = { cpu: await cpu.getAttribute('aria-valuenow'), workspaces: await workspaces.getAttribute('aria-valuenow') };
    assert.equal(before.workspaces, '0');
    const r = await t.call('POST', '/api/v1/teams/ml/workspaces', { token: mia, body: { name: 'shared-nb', profile: 'tiny' } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    await page.waitForFunction(() => document.querySelector('[role=meter][aria-label^="Workspaces"]')?.getAttribute('aria-valuenow') === '1');
    await page.waitForFunction((was) => document.querySelector('[role=meter][aria-label^="CPU"]')?.getAttribute('aria-valuenow') !== was, before.cpu);
    await t.waitPhase(mia, 'ml/shared-nb', ['running', 'failed']);
    await page.getByRole('link', { name: 'shared-nb' }).waitFor();
    await shoot(page, 'team');
    await page.context().close();
  });

  await suite.test('a viewer sees no launch or delete controls, and the API refuses them anyway', async () => {
    const page = await signIn('vic');
    await page.getByRole('link', { name: 'shared-nb' }).waitFor();
    // vic owns his personal team and may launch there, never in ml
    await page.getByRole('button', { name: 'New workspace' }).first().click();
    const teams = await page.getByRole('dialog', { name: 'New workspace' }).getByLabel('Team').locator('option').allTextContents();
    assert.deepEqual(teams, ['vic (personal)']);
    await page.keyboard.press('Escape');
    await page.getByRole('dialog', { name: 'New workspace' }).waitFor({ state: 'hidden' });
    assert.equal(await page.getByRole('button', { name: /^(Delete|Stop|Start) ml\// }).count(), 0);
    assert.equal(await page.getByRole('link', { name: /^Open ml\// }).count(), 0);
    await page.getByRole('link', { name: 'shared-nb' }).click();
    await page.getByRole('heading', { name: 'Connect' }).waitFor();
    assert.equal(await page.getByRole('button', { name: /^(Delete|Stop|Start)/ }).count(), 0);
    await shoot(page, 'workspace-viewer');
    const refused = await page.evaluate(async () => {
      const create = await fetch('/api/v1/teams/ml/workspaces', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'nope', profile: 'tiny' }) });
      const remove = await fetch('/api/v1/teams/ml/workspaces/shared-nb', { method: 'DELETE' });
      const stop = await fetch('/api/v1/teams/ml/workspaces/shared-nb/stop', { method: 'POST' });
      return [create.status, remove.status, stop.status];
    });
    assert.deepEqual(refused, [403, 403, 403]);
    assert.equal((await t.call('GET', '/api/v1/teams/ml/workspaces/shared-nb', { token: olga })).body.desired, 'running');
    await page.context().close();
  });

  await suite.test('a team owner creates and grows a volume, an editor mounts it at launch, an admin publishes it', async () => {
    const owner = await signIn('olga');
    await owner.goto(`${portal}/teams/ml`);
    const volumes = owner.getByRole('region', { name: 'Volumes' });
    await volumes.getByRole('heading', { name: 'Create a volume' }).waitFor();
    // the form checks the size before anything is sent
    await volumes.getByLabel('Volume name').fill('corpus');
    await volumes.getByLabel('Size').fill('lots');
    await volumes.getByRole('button', { name: 'Create volume' }).click();
    await volumes.getByText(/“lots” is not a size/).waitFor();
    assert.equal((await t.call('GET', '/api/v1/teams/ml/volumes', { token: olga })).body.items.length, 0, 'nothing sent');
    // beyond the storage quota: the API's refusal, in words
    await volumes.getByLabel('Size').fill('10Gi');
    await volumes.getByRole('button', { name: 'Create volume' }).click();
    await volumes.getByRole('alert').filter({ hasText: /storage: 10Gi requested/ }).waitFor();
    await volumes.getByLabel('Size').fill('100Mi');
    await volumes.getByLabel(/Read-only for viewers/).check();
    await volumes.getByRole('button', { name: 'Create volume' }).click();
    await volumes.getByRole('cell', { name: 'corpus', exact: true }).waitFor();
    // the team's storage counts it
    await owner.getByRole('meter', { name: /^Storage: 132Mi of 1Gi/ }).waitFor();
    const created = (await t.call('GET', '/api/v1/teams/ml/volumes/corpus', { token: olga })).body;
    assert.equal(created.size, '100Mi');
    assert.equal(created.readOnlyFor, 'viewers');

    // an editor picks it in the launch dialog, at a path of her own
    const page = await signIn('mia');
    await page.getByRole('button', { name: 'New workspace' }).first().click();
    const dialog = page.getByRole('dialog', { name: 'New workspace' });
    await dialog.getByLabel('Team', { exact: true }).selectOption('ml');
    await dialog.getByLabel('Name').fill('reader');
    await dialog.getByText(/Not available: team ml cpu: 64 requested/).waitFor();
    await dialog.getByRole('radio', { name: /Tiny/ }).check();
    await dialog.getByRole('checkbox', { name: /corpus/ }).check();
    await dialog.getByLabel('Path of corpus').fill('/etc/corpus');
    await dialog.getByRole('button', { name: 'Launch' }).click();
    await dialog.getByText(/The path of corpus must be under \/data or \/home\/jovyan/).waitFor();
    await dialog.getByLabel('Path of corpus').fill('/home/jovyan/corpus');
    await shoot(page, 'launch-volumes');
    await dialog.getByRole('button', { name: 'Launch' }).click();
    await dialog.waitFor({ state: 'hidden' });
    const ws = await t.waitPhase(mia, 'ml/reader', ['running', 'failed']);
    assert.deepEqual(ws.volumes, [{ volume: 'ml/corpus', path: '/home/jovyan/corpus' }]);
    assert.equal(ws.phase, 'running', ws.reason);
    await page.getByRole('link', { name: 'reader', exact: true }).click();
    await page.getByRole('heading', { name: 'Details' }).waitFor();
    await page.getByText('host /usr').waitFor();
    await page.locator('.details').getByText(/ml\/corpus\s+at\s+\/home\/jovyan\/corpus/).waitFor();
    await shoot(page, 'workspace-volumes');
    await page.context().close();

    // the owner's page shows who mounts it (live), and a delete is refused while it does
    await volumes.getByRole('link', { name: 'ml/reader' }).waitFor();
    await volumes.getByRole('button', { name: 'Delete volume corpus' }).click();
    let confirm = owner.getByRole('dialog', { name: 'Delete volume corpus?' });
    await confirm.getByRole('button', { name: 'Delete volume' }).click();
    await confirm.getByRole('alert').waitFor();
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await confirm.waitFor({ state: 'hidden' });
    // grow only
    await volumes.getByRole('button', { name: 'Edit volume corpus' }).click();
    const edit = owner.getByRole('dialog', { name: 'Edit volume corpus' });
    await edit.getByLabel('Size').fill('50Mi');
    await edit.getByRole('button', { name: 'Save' }).click();
    await edit.getByText('Volumes never shrink: enter 100Mi or more.').waitFor();
    await edit.getByLabel('Size').fill('200Mi');
    await edit.getByRole('button', { name: 'Save' }).click();
    await edit.waitFor({ state: 'hidden' });
    await volumes.getByRole('cell', { name: '200Mi', exact: true }).waitFor();
    assert.equal((await t.call('GET', '/api/v1/teams/ml/volumes/corpus', { token: olga })).body.size, '200Mi');
    // only admins publish
    assert.equal(await volumes.getByRole('button', { name: /^Publish/ }).count(), 0);
    await shoot(owner, 'team-volumes');

    // an admin publishes it to vic's team, where it is a read-only dataset
    const admin = await signIn('admin', 'admin-password-for-tests');
    await admin.goto(`${portal}/teams/ml`);
    await admin.getByRole('button', { name: 'Publish volume corpus' }).click();
    const publish = admin.getByRole('dialog', { name: 'Publish volume corpus' });
    await publish.getByLabel('Teams').fill('vic');
    await publish.getByRole('button', { name: 'Publish' }).click();
    await publish.waitFor({ state: 'hidden' });
    await admin.getByRole('region', { name: 'Volumes' }).getByRole('link', { name: 'vic', exact: true }).waitFor();
    assert.deepEqual((await t.call('GET', '/api/v1/teams/ml/volumes/corpus', { token: olga })).body.sharedWith, ['vic']);
    await admin.context().close();
    const viewer = await signIn('vic');
    await viewer.goto(`${portal}/teams/vic`);
    await viewer.getByRole('table', { name: 'Datasets published to vic' }).getByRole('cell', { name: 'ml/corpus' }).waitFor();
    await viewer.context().close();

    // once no workspace mounts it, the owner deletes it
    assert.equal((await t.call('DELETE', '/api/v1/teams/ml/workspaces/reader?purge=true', { token: mia })).status, 204);
    const deadline = Date.now() + 90_000;
    while ((await t.call('GET', '/api/v1/teams/ml/workspaces/reader', { token: mia })).status !== 404) {
      assert.ok(Date.now() < deadline, 'ml/reader is deleted');
      await new Promise((r) => setTimeout(r, 100));
    }
    await volumes.getByText('No workspace').waitFor();
    await volumes.getByRole('button', { name: 'Delete volume corpus' }).click();
    confirm = owner.getByRole('dialog', { name: 'Delete volume corpus?' });
    await confirm.getByRole('button', { name: 'Delete volume' }).click();
    await confirm.waitFor({ state: 'hidden' });
    await volumes.getByRole('heading', { name: 'No volumes yet' }).waitFor();
    assert.equal((await t.call('GET', '/api/v1/teams/ml/volumes/corpus', { token: olga })).status, 404);
    await owner.context().close();
  });

  await suite.test('an admin imports an image with its steps shown live, then removes it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'atrium-portal-image-'));
    suite.after(() => rmSync(dir, { recursive: true, force: true }));
    const image = await buildImage(join(dir, 'layout'), { kind: 'tiny' });
    const page = await signIn('admin', 'admin-password-for-tests');
    await page.getByRole('link', { name: 'Admin' }).click();
    await page.getByRole('navigation', { name: 'Admin' }).getByRole('link', { name: 'Images' }).click();
    await page.getByRole('heading', { name: 'Images', level: 2, exact: true }).waitFor();
    await page.getByRole('heading', { name: 'No images yet' }).waitFor();
    // checked before it is sent
    await page.getByLabel('Name (optional)').fill('Not An Image Name');
    await page.getByRole('button', { name: 'Import', exact: true }).click();
    await page.getByText('Enter what to import, e.g. python:3.11.').waitFor();
    await page.getByText(/^Image names are lowercase letters/).waitFor();
    await page.getByLabel('Source').fill(image.ref);
    await page.getByLabel('Name (optional)').fill('portal/tiny:1');
    await page.getByRole('button', { name: 'Import', exact: true }).click();
    const log = page.getByRole('log', { name: 'Progress of the import of portal/tiny:1' });
    await log.waitFor();
    await page.locator('.image-progress .badge').filter({ hasText: /^(ready|failed)$/ }).waitFor({ timeout: 120_000 });
    assert.equal((await page.locator('.image-progress .badge').textContent())?.trim(), 'ready', await log.textContent() ?? '');
    assert.ok((await log.locator('li').count()) >= 1);
    const row = page.getByRole('row').filter({ has: page.getByRole('cell', { name: 'portal/tiny:1' }) });
    await row.waitFor();
    const listed = (await t.call('GET', '/api/v1/images', { token: t.adminToken })).body.items as Array<{ name: string; digest: string }>;
    assert.deepEqual(listed.map((i) => i.name), ['portal/tiny:1']);
    await row.getByText(listed[0]!.digest.slice(7, 19)).waitFor();
    await shoot(page, 'admin-images');
    // a name with '/' and ':' is one path segment
    await row.getByRole('button', { name: 'Remove image portal/tiny:1' }).click();
    const confirm = page.getByRole('dialog', { name: 'Remove image portal/tiny:1?' });
    await confirm.getByRole('button', { name: 'Remove image' }).click();
    await confirm.waitFor({ state: 'hidden' });
    await page.getByRole('heading', { name: 'No images yet' }).waitFor();
    assert.deepEqual((await t.call('GET', '/api/v1/images', { token: t.adminToken })).body.items, []);
    await page.context().close();
  });

  await suite.test('an admin creates a user and a team', async () => {
    const page = await signIn('admin', 'admin-password-for-tests');
    await page.getByRole('link', { name: 'Admin' }).click();
    await page.getByRole('button', { name: 'Create user' }).click();
    let dialog = page.getByRole('dialog', { name: 'Create user' });
    await dialog.getByLabel('Username').fill('newbie');
    await dialog.getByLabel('Password').fill('newbie-password-1');
    await dialog.getByRole('button', { name: 'Create user' }).click();
    await page.getByRole('cell', { name: 'newbie' }).first().waitFor();
    const user = await t.call('GET', '/api/v1/users/newbie', { token: t.adminToken });
    assert.equal(user.status, 200);
    await shoot(page, 'admin-users');

    await page.getByRole('link', { name: 'Teams', exact: true }).last().click();
    await page.getByRole('button', { name: 'Create team' }).click();
    dialog = page.getByRole('dialog', { name: 'Create team' });
    await dialog.getByLabel('Name', { exact: true }).fill('vision');
    await dialog.getByLabel(/Sensitive/).check();
    await dialog.getByRole('button', { name: 'Create team' }).click();
    await page.getByRole('table').getByRole('link', { name: 'vision', exact: true }).waitFor();
    const team = await t.call('GET', '/api/v1/teams/vision', { token: t.adminToken });
    assert.equal(team.status, 200);
    assert.equal(team.body.sensitive, true);
    await shoot(page, 'admin-teams');
    // each tab once it shows its own section (a click on a tab only starts the route change), loaded (`shoot` waits for that)
    for (const [tab, heading, name] of [['Profiles', 'Profiles', 'admin-profiles'], ['GPUs', 'GPU pools', 'admin-gpus'], ['Audit log', 'Audit log', 'admin-audit']] as const) {
      await page.getByRole('navigation', { name: 'Admin' }).getByRole('link', { name: tab }).click();
      await page.getByRole('heading', { name: heading, level: 2 }).waitFor();
      await shoot(page, name);
    }
    await page.context().close();
  });

  await suite.test('sign-in page, session end and every page checked with axe', async () => {
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(`${portal}/login`);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await shoot(page, 'login');
    // a wrong password shows the API's message, the form keeps the username
    await page.getByLabel('Username').fill('mia');
    await page.getByLabel('Password').fill('wrong-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').waitFor();
    assert.equal(await page.getByLabel('Username').inputValue(), 'mia');
    await page.getByLabel('Password').fill('pw-mia-secret');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Workspaces', level: 1 }).waitFor();
    // the dark theme (people who ask their system for it) meets the same bar
    await page.emulateMedia({ colorScheme: 'dark' });
    await settled(page);
    await checkA11y(page, 'workspaces, dark');
    await page.getByRole('link', { name: 'Teams' }).click();
    await page.getByRole('heading', { name: 'Teams', level: 1 }).waitFor();
    await settled(page);
    await checkA11y(page, 'teams, dark');
    await page.screenshot({ path: join(SHOTS, 'teams-dark-1280.png'), fullPage: true });
    await page.getByRole('link', { name: 'Workspaces' }).click();
    await page.getByRole('heading', { name: 'Workspaces', level: 1 }).waitFor();
    // the session ends elsewhere (an admin disables and re-enables the account): the next call sends the person to sign in, saying why
    await t.call('PATCH', '/api/v1/users/mia', { token: t.adminToken, body: { disabled: true } });
    await t.call('PATCH', '/api/v1/users/mia', { token: t.adminToken, body: { disabled: false } });
    // the portal notices at its next call: the person's click, or a refresh it makes by itself, whichever comes first;
    // so the test waits on where both end, the sign-in page saying why, not on the click
    await page.getByRole('link', { name: 'Keys & tokens' }).click({ timeout: 5000 }).catch(() => undefined);
    await page.getByText('Your session has ended').waitFor();
    assert.match(page.url(), /\/login\?next=%2F(settings)?&expired=1$/);
    await context.close();

    assert.deepEqual(axeFindings, [], 'axe-core: no serious or critical findings');
    assert.ok(shots.length >= 24, `screenshots saved (${shots.length}) under ${SHOTS}`);
  });
});

test('behind an SSO proxy the trusted header signs people in: no sign-in form, no sign-out button', { skip: available === true ? false : available }, async () => {
  const t = await startServer({ flags: { 'auth.header': 'kubeflow-userid', 'auth.trustedProxies': ['127.0.0.1', '::1'] } });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const context = await browser.newContext({ extraHTTPHeaders: { 'kubeflow-userid': 'sso-sam' } });
    context.setDefaultTimeout(60_000);
    const page = await context.newPage();
    await page.goto(`${t.url}/login?next=%2Fsettings`);
    await page.waitForURL(/\/settings$/);
    await page.getByRole('heading', { name: 'Keys & tokens', level: 1 }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Sign out' }).count(), 0);
    assert.equal(await page.getByLabel('Password').count(), 0);
    const me = (await t.call('GET', '/api/v1/users/sso-sam', { token: t.adminToken })).body;
    assert.equal(me.sso, true, 'registered at first sign-in');
  } finally {
    await browser.close();
  }
});

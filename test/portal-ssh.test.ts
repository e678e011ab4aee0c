import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { chromium, type Browser, type Page } from 'playwright-core';
import { DEFAULT_PORTAL_DIR } from '../src/server/index.js';
import { startServer, type TestServer } from './helpers.js';
import { newPublicKey } from './keys.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(import.meta.dirname, '..', 'test-output', 'portal-ssh');
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const exec = promisify(execFile);

function portalAvailable(): true | string {
  const missing = [
    existsSync(CHROMIUM) ? '' : `${CHROMIUM} (scripts/deps.sh test installs it)`,
    existsSync(join(DEFAULT_PORTAL_DIR, 'index.html')) ? '' : 'the built portal (npm run build)',
    existsSync('/usr/bin/ssh-keyscan') ? '' : 'ssh-keyscan (openssh-client)',
  ]
    .filter(Boolean)
    .join(' and ');
  if (!missing) return true;
  if (process.env.CI) throw new Error(`missing ${missing}`);
  return `needs ${missing}`;
}

const available = portalAvailable();

interface SshAccess {
  gateway: { host: string; port: number; hostKey: string; fingerprint: string } | null;
  keys: number;
  workspaces: Array<{ team: string; name: string; phase: string; alias: string; gatewayUser: string; tunnel: string; hostKey: string; fingerprint: string }>;
}

async function sshAccess(t: TestServer, token: string): Promise<SshAccess> {
  const r = await t.call('GET', '/api/v1/me/ssh', { token });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body as SshAccess;
}

/** The first line a server on host:port sends (an SSH server's identification string). */
function banner(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port });
    let got = '';
    sock.setEncoding('utf8');
    sock.setTimeout(10_000, () => sock.destroy(new Error(`no banner from ${host}:${port}`)));
    sock.on('data', (d: string) => {
      got += d;
      const nl = got.indexOf('\n');
      if (nl !== -1) {
        sock.destroy();
        resolve(got.slice(0, nl).trim());
      }
    });
    sock.on('error', reject);
  });
}

/** The fingerprint `ssh-keygen -l` gives a public key line (or a known-hosts line). */
async function keyFingerprint(line: string): Promise<string> {
  const child = execFile('ssh-keygen', ['-l', '-E', 'sha256', '-f', '-']);
  const out = new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`ssh-keygen -l exited ${code}`))));
  });
  child.stdin!.end(`${line}\n`);
  return (await out).split(' ')[1]!;
}

/** The SHA256 fingerprint of the ed25519 host key the server on host:port really presents, as OpenSSH computes it. */
async function liveFingerprint(host: string, port: number): Promise<string> {
  const { stdout: scanned } = await exec('ssh-keyscan', ['-T', '10', '-t', 'ed25519', '-p', String(port), host]);
  const line = scanned.split('\n').find((l) => / ssh-ed25519 /.test(l));
  assert.ok(line, `ssh-keyscan found an ed25519 host key at ${host}:${port}: ${scanned}`);
  return keyFingerprint(line);
}

/** axe-core on the page as it is now: every finding, whatever its impact. */
async function axeViolations(page: Page): Promise<string[]> {
  // evaluated through the DevTools protocol: the portal's CSP (rightly) refuses injected script tags
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(readFileSync(AXE, 'utf8'));
  const result = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(ctx: Document): Promise<{ violations: Array<{ id: string; impact: string; nodes: Array<{ target: string[] }> }> }> } }).axe;
    return axe.run(document);
  });
  return result.violations.map((v) => `${v.impact} ${v.id} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/** Screenshots (full page) at laptop and phone widths, with axe at each: every finding, whatever its impact. */
async function shootAndCheck(page: Page, name: string): Promise<string[]> {
  const found: string[] = [];
  for (const [width, height] of [[1280, 800], [375, 812]] as const) {
    await page.setViewportSize({ width, height });
    // laid out and painted at the new size: two animation frames
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    await page.screenshot({ path: join(SHOTS, `${name}-${width}.png`), fullPage: true });
    found.push(...(await axeViolations(page)).map((v) => `${width}px: ${v}`));
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  return found;
}

/** One way in on the Connect panel, found by its heading. */
function way(page: Page, title: string) {
  return page
    .getByRole('region', { name: 'Connect' })
    .getByRole('listitem')
    .filter({ has: page.getByRole('heading', { name: title, exact: true, level: 3 }) });
}

/**
 * The workspace page's Connect panel in a real browser against a real server
 * (no runtime: the workspace stays pending, the panel shows all the same):
 * every way in carries the values the API and the running gateway give, the
 * "add a key" notice shows exactly while the person has no key, and axe
 * finds nothing.
 */
test('the Connect panel shows the SSH ways in', { skip: available === true ? false : available, timeout: 300_000 }, async (suite) => {
  let t: TestServer;
  let browser: Browser;
  let mia: string;
  {
    t = await startServer();
    mia = await t.user('mia');
    await t.user('vic');
    const created = await t.call('POST', '/api/v1/teams/mia/workspaces', { token: mia, body: { name: 'lab', profile: 'small' } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    suite.after(() => browser.close());
    rmSync(SHOTS, { recursive: true, force: true });
    mkdirSync(SHOTS, { recursive: true });
  }

  async function signIn(username: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    context.setDefaultTimeout(60_000);
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: t.url });
    const page = await context.newPage();
    await page.goto(`${t.url}/`);
    await page.waitForURL(/\/login\?next=%2F$/);
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(`pw-${username}-secret`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Workspaces', level: 1 }).waitFor();
    return page;
  }

  await suite.test('ssh command, host keys, VS Code link and the add-a-key notice, with the real gateway values', async () => {
    const before = await sshAccess(t, mia);
    const gateway = before.gateway;
    assert.ok(gateway, 'the test server runs the SSH gateway');
    assert.equal(before.keys, 0);
    // the gateway the API describes is the one listening: its port, an SSH server there, and the host key it presents
    assert.equal(gateway.port, t.server.ssh.port);
    assert.notEqual(gateway.port, 22, 'a free port (ssh.port 0), so the command must carry -p');
    assert.match(await banner(gateway.host, gateway.port), /^SSH-2\.0-Atrium/);
    assert.match(gateway.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
    assert.equal(await liveFingerprint(gateway.host, gateway.port), gateway.fingerprint, 'the fingerprint the API gives is the one ssh sees');
    const entry = before.workspaces.find((w) => w.team === 'mia' && w.name === 'lab');
    assert.ok(entry, JSON.stringify(before.workspaces));
    assert.equal(entry.alias, 'atrium.mia.lab');
    assert.equal(entry.gatewayUser, 'mia.lab');
    assert.match(entry.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
    assert.notEqual(entry.fingerprint, gateway.fingerprint);
    assert.equal(await keyFingerprint(entry.hostKey), entry.fingerprint, "the workspace's fingerprint is its host key's");

    const page = await signIn('mia');
    await page.goto(`${t.url}/workspaces/mia/lab`);
    const panel = page.getByRole('region', { name: 'Connect' });
    await panel.waitFor();

    // SSH through the gateway: the command with the real host and port, copied whole
    const sshCommand = `ssh -p ${gateway.port} mia.lab@${gateway.host}`;
    const ssh = way(page, 'SSH');
    await ssh.waitFor();
    assert.equal((await ssh.locator('.copy-field code').textContent())?.trim(), sshCommand);
    await ssh.getByRole('button', { name: 'Copy ssh command' }).click();
    await ssh.getByRole('button', { name: 'Copied ssh command' }).filter({ hasText: 'Copied' }).waitFor();
    assert.equal(await ssh.getByRole('status').textContent(), 'Copied ssh command');
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), sshCommand);
    assert.equal((await ssh.locator('.way-hostkey code').textContent())?.trim(), gateway.fingerprint);

    // the Atrium CLI and the config entries, with the workspace's own host key
    const cli = way(page, 'Atrium CLI');
    assert.equal((await cli.locator('.copy-field code').textContent())?.trim(), 'atrium ssh mia/lab');
    assert.equal((await cli.locator('.way-hostkey code').textContent())?.trim(), entry.fingerprint);
    const config = way(page, 'SSH config');
    assert.deepEqual((await config.locator('.copy-field code').allTextContents()).map((s) => s.trim()), ['atrium config-ssh', `ssh ${entry.alias}`]);

    // VS Code: the Remote-SSH link to the home, shown while the workspace is not running (connecting starts it)
    assert.notEqual((await t.call('GET', '/api/v1/teams/mia/workspaces/lab', { token: mia })).body.phase, 'running');
    const vscode = page.getByRole('link', { name: 'Open in VS Code' });
    assert.equal(await vscode.getAttribute('href'), `vscode://vscode-remote/ssh-remote+${entry.alias}/home/jovyan`);
    assert.equal(await vscode.getAttribute('href'), 'vscode://vscode-remote/ssh-remote+atrium.mia.lab/home/jovyan');
    // the browser's own Open link waits for the workspace to run
    assert.equal(await page.getByRole('link', { name: 'Open in a new tab' }).count(), 0);
    assert.equal((await way(page, 'Browser').locator('.copy-field code').textContent())?.trim(), `${t.url}/w/mia/lab/`);

    // no key yet: the notice links to the SSH keys on the settings page
    const addKey = panel.getByRole('link', { name: 'Add an SSH key to connect over SSH' });
    assert.equal(await addKey.count(), 1);
    assert.equal(await addKey.getAttribute('href'), '/settings#ssh-keys');
    assert.deepEqual(await shootAndCheck(page, 'connect-no-key'), [], 'axe: the workspace page with the notice');
    await page.emulateMedia({ colorScheme: 'dark' });
    assert.deepEqual(await shootAndCheck(page, 'connect-no-key-dark'), [], 'axe: the workspace page with the notice, dark');
    await page.emulateMedia({ colorScheme: 'light' });

    // the link lands on the SSH keys, focused; add a key there
    await addKey.click();
    await page.waitForURL(/\/settings#ssh-keys$/);
    await page.waitForFunction(() => document.activeElement?.id === 'ssh-keys');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'SSH keys');
    const publicKey = newPublicKey('mia@laptop');
    await page.getByLabel('Public key').fill(publicKey);
    await page.getByRole('button', { name: 'Add key' }).click();
    await page.getByText(await keyFingerprint(publicKey)).waitFor();
    assert.equal((await sshAccess(t, mia)).keys, 1);

    // back on the workspace: the notice goes once the panel knows of the key, and stays gone on a fresh load
    await page.goBack();
    await page.waitForURL(/\/workspaces\/mia\/lab$/);
    await way(page, 'SSH').waitFor();
    await panel.getByRole('link', { name: 'Add an SSH key to connect over SSH' }).waitFor({ state: 'detached' });
    await page.reload();
    await way(page, 'SSH').locator('.copy-field code').filter({ hasText: sshCommand }).waitFor();
    assert.equal(await page.getByRole('link', { name: 'Add an SSH key to connect over SSH' }).count(), 0);
    assert.equal(await page.getByText('You have no SSH key yet', { exact: false }).count(), 0);
    assert.deepEqual(await shootAndCheck(page, 'connect'), [], 'axe: the workspace page with a key');
    await page.context().close();
  });

  await suite.test('when /me/ssh fails the browser way still shows, with why SSH is missing', async () => {
    const page = await signIn('mia');
    await page.route('**/api/v1/me/ssh', (route) => route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: { code: 'unavailable', message: 'SSH access is down for the test' } }) }));
    await page.goto(`${t.url}/workspaces/mia/lab`);
    await page.getByRole('region', { name: 'Connect' }).getByRole('alert').filter({ hasText: 'SSH access is down for the test' }).waitFor();
    assert.equal((await way(page, 'Browser').locator('.copy-field code').textContent())?.trim(), `${t.url}/w/mia/lab/`);
    assert.equal(await way(page, 'SSH').count(), 0);
    assert.equal(await page.getByRole('link', { name: 'Open in VS Code' }).count(), 0);
    assert.equal(await page.getByRole('link', { name: 'Add an SSH key to connect over SSH' }).count(), 0);
    await page.context().close();
  });

  await suite.test('someone who may not connect sees no ways in and never asks for them', async () => {
    const r = await t.call('PUT', '/api/v1/teams/mia/members/vic', { token: mia, body: { role: 'viewer' } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const page = await signIn('vic');
    const asked: string[] = [];
    page.on('request', (req) => {
      if (new URL(req.url()).pathname === '/api/v1/me/ssh') asked.push(req.url());
    });
    await page.goto(`${t.url}/workspaces/mia/lab`);
    await page.getByRole('region', { name: 'Connect' }).getByText('Only mia can connect').waitFor();
    assert.equal(await page.getByRole('link', { name: 'Open in VS Code' }).count(), 0);
    assert.equal(await page.getByText(/ssh -p/).count(), 0);
    assert.deepEqual(asked, []);
    await page.context().close();
  });
});

test('without the SSH gateway the panel offers the CLI ways and no gateway command', { skip: available === true ? false : available, timeout: 120_000 }, async () => {
  const t = await startServer({ flags: { 'ssh.enabled': false } });
  const mia = await t.user('mia');
  assert.equal((await t.call('POST', '/api/v1/teams/mia/workspaces', { token: mia, body: { name: 'lab', profile: 'small' } })).status, 201);
  const access = await sshAccess(t, mia);
  assert.equal(access.gateway, null);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const context = await browser.newContext();
    context.setDefaultTimeout(60_000);
    const page = await context.newPage();
    await page.goto(`${t.url}/login?next=%2Fworkspaces%2Fmia%2Flab`);
    await page.getByLabel('Username').fill('mia');
    await page.getByLabel('Password').fill('pw-mia-secret');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await way(page, 'Atrium CLI').waitFor();
    assert.equal(await way(page, 'SSH').count(), 0);
    assert.equal(await page.getByText(/^ssh -p /).count(), 0);
    assert.equal(await page.getByRole('link', { name: 'Open in VS Code' }).getAttribute('href'), 'vscode://vscode-remote/ssh-remote+atrium.mia.lab/home/jovyan');
    assert.equal(await page.getByRole('link', { name: 'Add an SSH key to connect over SSH' }).count(), 1);
  } finally {
    await browser.close();
  }
});

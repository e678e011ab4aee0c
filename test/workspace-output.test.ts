import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { PLATFORM_LINE_MARKER } from '../src/domain/index.js';
import { DEFAULT_PORTAL_DIR } from '../src/server/index.js';
import { PROFILES, sandboxesAvailable, startSandboxServer } from './sandbox.js';

/**
 * What a workspace's app prints reaches people's terminals only through the
 * real `atrium` CLI's filter: escape sequences (an OSC 52 clipboard write,
 * colours, a carriage-return overwrite) are gone, the visible text stays, and
 * a line the app dresses up as the platform's is neither trusted as a failure
 * reason nor printed as one.
 */
const available = sandboxesAvailable();
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';

// OSC 52 asks the terminal to put "hacked" (base64) on the clipboard
const OSC52 = '\\x1b]52;c;aGFja2Vk\\x07';

// prints its noise, then a tick with more of it every 200 ms (so `logs -f` sees new output), and serves HTTP so the workspace runs
const NOISY_APP = `
import sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
print('\\x1b[31mred alert\\x1b[0m and ${OSC52}clipboard written')
print('progress 10%\\rprogress 100%')
print('[atrium 12:00:00] app exited with status 0')
print('title \\x1b]0;pwned\\x1b\\\\kept \\x1bPdcs\\x1b\\\\done \\x9b31mc1\\x7f')
print('ready-sentinel')
def tick():
    n = 0
    while True:
        n += 1
        print('tick %d \\x1b[32mgreen\\x1b[0m ${OSC52}' % n)
        time.sleep(0.2)
threading.Thread(target=tick, daemon=True).start()
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header('content-length', '2')
        self.end_headers()
        self.wfile.write(b'ok')
    def log_message(self, *args):
        pass
ThreadingHTTPServer(('127.0.0.1', 9000), H).serve_forever()
`;

// prints escapes and forged "clean exit" lines (one with the platform's own marker byte in front), then fails with status 3
const FAILING_APP = `
import sys
print('\\x1b[1;31mfatal:\\x1b[0m config ${OSC52}missing')
print('[atrium 12:00:00] app exited with status 0')
print('\\x1e[atrium 12:00:01] app exited with status 0')
sys.exit(3)
`;

const small = { cpu: { guarantee: '50m', limit: '500m' }, memory: { guarantee: '32Mi', limit: '128Mi' }, storage: '16Mi' };
const EXTRA_PROFILES = [
  { name: 'noisy', displayName: 'Noisy', environment: { kind: 'custom', command: ['/usr/bin/python3', '-u', '-c', NOISY_APP], port: 9000 }, ...small },
  { name: 'noisy-fail', displayName: 'Noisy failure', environment: { kind: 'custom', command: ['/usr/bin/python3', '-u', '-c', FAILING_APP], port: 9000 }, ...small },
];

/** Bytes a terminal acts on: C0 controls other than newline and tab, DEL, and C1 controls. */
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

test('workspace output reaches the terminal without escape sequences', { skip: available === true ? false : available }, async (suite) => {
  const t = await startSandboxServer({ profiles: [...PROFILES, ...EXTRA_PROFILES] });
  await t.user('ona');
  const dir = mkdtempSync(join(tmpdir(), 'atrium-output-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const env: Record<string, string | undefined> = { ...process.env, ATRIUM_CREDENTIALS: join(dir, 'credentials.json') };
  delete env.ATRIUM_TOKEN;
  delete env.ATRIUM_URL;
  delete env.NO_COLOR;

  const atrium = (args: string[], input = '') =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [MAIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.stdin.end(input);
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  const login = await atrium(['login', t.url, '-u', 'ona', '--password-stdin'], 'pw-ona-secret\n');
  assert.equal(login.code, 0, login.stderr);

  await suite.test('`ws logs` prints the text and drops the escapes', async () => {
    const created = await atrium(['ws', 'create', 'noisy', '--profile', 'noisy']);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /Workspace ona\/noisy is running/);
    let logs = await atrium(['ws', 'logs', 'noisy']);
    for (const deadline = Date.now() + 30_000; !logs.stdout.includes('ready-sentinel') && Date.now() < deadline; ) logs = await atrium(['ws', 'logs', 'noisy']);
    assert.equal(logs.code, 0, logs.stderr);
    assert.doesNotMatch(logs.stdout, CONTROL, JSON.stringify(logs.stdout));
    assert.match(logs.stdout, /^red alert and clipboard written$/m);
    assert.match(logs.stdout, /^progress 10%progress 100%$/m);
    assert.match(logs.stdout, /^title kept done c1$/m);
    assert.doesNotMatch(logs.stdout, /aGFja2Vk|pwned|dcs/, 'the payloads of OSC and DCS strings are not shown either');
    assert.match(logs.stdout, /^\[app\] \[atrium 12:00:00\] app exited with status 0$/m, 'an app line dressed as the platform is set apart');
    assert.match(logs.stdout, /^tick \d+ green $/m);
  });

  await suite.test('`ws logs -f` filters what arrives while it follows', async () => {
    const child = spawn(process.execPath, [MAIN, 'ws', 'logs', 'noisy', '-f', '-n', '1'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const ticks = await new Promise<number[]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no new ticks while following:\n${JSON.stringify(out)}`)), 30_000);
      child.stdout.on('data', (d) => {
        out += d;
        const seen = [...out.matchAll(/^tick (\d+) /gm)].map((m) => Number(m[1]));
        if (seen.length >= 3) {
          clearTimeout(timer);
          resolve(seen);
        }
      });
    });
    child.kill('SIGTERM');
    assert.ok(ticks.at(-1)! > ticks[0]!, 'new output arrived while following');
    assert.doesNotMatch(out, CONTROL, JSON.stringify(out));
    assert.match(out, /^tick \d+ green $/m);
  });

  await suite.test('a failed start reports its reason and log tail without escapes, and never the forged line as the reason', async () => {
    const failed = await atrium(['ws', 'create', 'broken', '--profile', 'noisy-fail']);
    assert.equal(failed.code, 1);
    assert.doesNotMatch(failed.stderr + failed.stdout, CONTROL, JSON.stringify(failed.stderr));
    assert.match(failed.stderr, /workspace ona\/broken failed: app exited with status 3$/m, 'the reason is the platform\'s own line');
    assert.match(failed.stderr, /^fatal: config missing$/m);
    assert.match(failed.stderr, /^\[app\] \[atrium 12:00:00\] app exited with status 0$/m);
    assert.doesNotMatch(failed.stderr, /aGFja2Vk/);
    const shown = await atrium(['ws', 'show', 'broken']);
    assert.match(shown.stdout, /^phase:\s+failed: app exited with status 3$/m);
    assert.doesNotMatch(shown.stdout, /status 0/);
    const json = await atrium(['ws', 'show', 'broken', '--json']);
    assert.doesNotMatch(json.stdout, CONTROL);
    assert.equal(JSON.parse(json.stdout).phase, 'failed');
  });

  await suite.test("the platform's own lines are shown without their marker, in the CLI and in the portal", async () => {
    // the log as stored: the platform's lines marked, the marker the app printed replaced
    const log = readFileSync(join(t.dataDir, 'local', 'run', await t.wsId('ona/broken'), 'app.log'), 'utf8');
    assert.match(log, new RegExp(`^${PLATFORM_LINE_MARKER}\\[atrium \\d\\d:\\d\\d:\\d\\d\\] app exited with status 3$`, 'm'));
    assert.equal(log.split('\n').filter((l) => l.startsWith(PLATFORM_LINE_MARKER)).length, 2, `only the platform's two lines (started, exited) are marked:\n${JSON.stringify(log)}`);

    const logs = await atrium(['ws', 'logs', 'broken']);
    assert.equal(logs.code, 0, logs.stderr);
    assert.doesNotMatch(logs.stdout, CONTROL, JSON.stringify(logs.stdout));
    assert.match(logs.stdout, /^\[atrium \d\d:\d\d:\d\d\] app exited with status 3$/m);
    assert.match(logs.stdout, /^\[app\] \[atrium 12:00:00\] app exited with status 0$/m);
    assert.match(logs.stdout, /^\[app\] \uFFFD\[atrium 12:00:01\] app exited with status 0$/m, 'the forged marker arrives replaced');

    if (!existsSync(CHROMIUM) || !existsSync(join(DEFAULT_PORTAL_DIR, 'index.html'))) {
      if (process.env.CI) throw new Error(`the portal check needs ${CHROMIUM} and the built portal`);
      return;
    }
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage();
      const portal = `http://localhost:${new URL(t.url).port}`;
      await page.goto(`${portal}/login`);
      await page.getByLabel('Username').fill('ona');
      await page.getByLabel('Password').fill('pw-ona-secret');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Workspaces', level: 1 }).waitFor();
      await page.goto(`${portal}/workspaces/ona/broken`);
      const output = page.getByLabel("Last lines of the app's output");
      await output.getByText('fatal: config missing').waitFor();
      const text = (await output.textContent()) ?? '';
      assert.doesNotMatch(text, CONTROL, JSON.stringify(text));
      assert.doesNotMatch(text, /aGFja2Vk/);
      const platform = await output.locator('.log-platform').allTextContents();
      assert.ok(platform.some((l) => /^\[atrium \d\d:\d\d:\d\d\] app exited with status 3\n$/.test(l)), JSON.stringify(platform));
      assert.ok(!platform.some((l) => l.includes('status 0')), 'the forged line is not shown as the platform\'s');
    } finally {
      await browser.close();
    }
  });
});

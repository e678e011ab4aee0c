import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import WebSocket from 'ws';
import { waitUntil } from './helpers.js';
import { PROFILES, sandboxesAvailable, startSandboxServer } from './sandbox.js';

/** Idle workspaces are warned, then stopped; busy ones are left alone. */
const available = sandboxesAvailable();
const IDLE_TIMEOUT_S = 16;
const IDLE = [
  { name: 'idle-shell', displayName: 'Idle shell', environment: 'shell', cpu: { guarantee: '50m', limit: '500m' }, memory: { guarantee: '32Mi', limit: '256Mi' }, storage: '16Mi', idleTimeout: `${IDLE_TIMEOUT_S}s` },
  // warned 16s after its last activity (8s before it stops): time for the test to open a terminal once it runs, even on a loaded machine
  { name: 'idle-lab', displayName: 'Idle lab', environment: 'jupyter', cpu: { guarantee: '50m', limit: '1' }, memory: { guarantee: '128Mi', limit: '512Mi' }, storage: '32Mi', idleTimeout: '24s' },
];

test('idle culling', { skip: available === true ? false : available, timeout: 300_000 }, async (suite) => {
  const t = await startSandboxServer({ profiles: [...PROFILES, ...IDLE], 'runtime.cullEvery': '1s', 'runtime.idleWarning': '8s', 'runtime.cpuActive': 0.05 });
  const una = await t.user('una');
  await t.addKey(una, 'una');
  for (const [name, profile] of [['quiet', 'idle-shell'], ['busy', 'idle-shell'], ['lab', 'idle-lab']]) {
    assert.equal((await t.call('POST', '/api/v1/teams/una/workspaces', { token: una, body: { name, profile } })).status, 201);
  }
  // Each workspace's idle clock runs from the moment it runs, so what each needs is done as soon as that one runs,
  // not once all three do (a slow Jupyter start would otherwise eat into the others' timeouts).
  const terminalOutput: string[] = [];
  let terminalClosed = false;
  const [, , ws] = await Promise.all([
    t.waitPhase(una, 'una/quiet', ['running']),
    (async () => {
      // an unattended run: a CPU loop left behind by a session that has ended
      await t.waitPhase(una, 'una/busy', ['running']);
      const r = await t.sh('una/busy', 'nohup sh -c "while :; do :; done" >/dev/null 2>&1 & echo started');
      assert.equal(r.stdout.trim(), 'started', r.stderr);
    })(),
    (async () => {
      // a Jupyter terminal, open but idle, shows the warning
      await t.waitPhase(una, 'una/lab', ['running']);
      const labId = await t.wsId('una/lab');
      const dir = join(t.dataDir, 'local', 'run', labId);
      const token = readFileSync(join(dir, 'app-token'), 'utf8');
      const term = await new Promise<{ name: string }>((resolve, reject) => {
        const req = request({ socketPath: join(dir, 'http.sock'), method: 'POST', path: '/w/una/lab/api/terminals', headers: { authorization: `token ${token}`, host: 'localhost' } }, (res) => {
          let data = '';
          res.on('data', (c) => (data += c));
          res.on('end', () => resolve(JSON.parse(data)));
        });
        req.on('error', reject);
        req.end();
      });
      const socket = new WebSocket(`ws+unix://${join(dir, 'http.sock')}:/w/una/lab/terminals/websocket/${term.name}`, { headers: { authorization: `token ${token}` } });
      socket.on('message', (raw) => {
        const [kind, text] = JSON.parse((raw as Buffer).toString()) as [string, string];
        if (kind === 'stdout') terminalOutput.push(text);
      });
      socket.on('close', () => (terminalClosed = true));
      await new Promise((r, j) => {
        socket.once('open', r);
        socket.once('error', j);
      });
      return socket;
    })(),
  ]);

  await suite.test('an idle workspace is warned in its event stream, then stopped', async () => {
    const ws = await t.waitPhase(una, 'una/quiet', ['stopped']);
    assert.equal(ws.desired, 'stopped');
    const events = await t.server.store.events.after({ teamId: '', workspaceId: ws.id }, 0, 100);
    const warning = events.find((e) => e.type === 'idle-warning');
    assert.ok(warning, 'warned first');
    assert.match(warning.message, /^no activity for \S+: this workspace stops in about \S+ unless it is used$/);
    const stop = events.find((e) => e.type === 'desired' && e.data.desired === 'stopped')!;
    assert.match(stop.message, /no activity for 16s \(the profile's idle timeout\)/);
    assert.ok(stop.id > warning.id);
  });

  await suite.test("an open terminal shows the warning before its workspace is stopped", async () => {
    await t.waitPhase(una, 'una/lab', ['stopped']);
    // the stopped sandbox's terminal socket closes; whatever the terminal showed before that has arrived once it has
    const warned = () => /\[atrium\] no activity for \S+: this workspace stops in about/.test(terminalOutput.join(''));
    await waitUntil('the terminal socket to close', () => terminalClosed || warned(), { timeoutMs: 30_000 }).catch(() => undefined);
    assert.ok(warned(), `the terminal showed the warning (it showed: ${JSON.stringify(terminalOutput.join(''))})`);
    ws.close();
  });

  await suite.test('an unattended CPU-bound run is never idle', async () => {
    const get = async () => (await t.call('GET', '/api/v1/teams/una/workspaces/busy', { token: una })).body;
    // past its idle timeout, with some culler sweeps to spare: had it been taken for idle, it would be stopping by then
    const past = Date.parse((await get()).startedAt) + IDLE_TIMEOUT_S * 1000 + 5_000;
    if (Date.now() < past) await new Promise((r) => setTimeout(r, past - Date.now()));
    let ws = await get();
    assert.equal(ws.phase, 'running');
    assert.equal(ws.desired, 'running');
    assert.ok(Date.now() - Date.parse(ws.startedAt) > IDLE_TIMEOUT_S * 1000, 'past its idle timeout');
    // and its activity is being recorded: a sweep after this moment moves its last activity past it
    const since = Date.now();
    ws = await waitUntil('activity recorded after the idle timeout', async () => {
      const w = await get();
      return Date.parse(w.lastActivityAt) >= since || w.phase !== 'running' ? w : undefined;
    }, { timeoutMs: 30_000, last: () => ws });
    assert.equal(ws.phase, 'running');
    assert.ok(Date.parse(ws.lastActivityAt) >= since, `activity recorded (last activity ${ws.lastActivityAt}, checked from ${new Date(since).toISOString()})`);
  });
});

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import WebSocket from 'ws';
import { PROFILES, sandboxesAvailable, startSandboxServer } from './sandbox.js';

/** Idle workspaces are warned, then stopped; busy ones are left alone. */
const available = sandboxesAvailable();
const IDLE = [
  { name: 'idle-shell', displayName: 'Idle shell', environment: 'shell', cpu: { guarantee: '50m', limit: '500m' }, memory: { guarantee: '32Mi', limit: '256Mi' }, storage: '16Mi', idleTimeout: '16s' },
  { name: 'idle-lab', displayName: 'Idle lab', environment: 'jupyter', cpu: { guarantee: '50m', limit: '1' }, memory: { guarantee: '128Mi', limit: '512Mi' }, storage: '32Mi', idleTimeout: '16s' },
];

test('idle culling', { skip: available === true ? false : available, timeout: 180_000 }, async (suite) => {
  const t = await startSandboxServer({ profiles: [...PROFILES, ...IDLE], 'runtime.cullEvery': '1s', 'runtime.idleWarning': '8s', 'runtime.cpuActive': 0.05 });
  const una = await t.user('una');
  await t.addKey(una, 'una');
  for (const [name, profile] of [['quiet', 'idle-shell'], ['busy', 'idle-shell'], ['lab', 'idle-lab']]) {
    assert.equal((await t.call('POST', '/api/v1/teams/una/workspaces', { token: una, body: { name, profile } })).status, 201);
  }
  await Promise.all(['una/quiet', 'una/busy', 'una/lab'].map((r) => t.waitPhase(una, r, ['running'])));
  // an unattended run: a CPU loop left behind by a session that has ended
  await t.sh('una/busy', 'nohup sh -c "while :; do :; done" >/dev/null 2>&1 & echo started');

  // a Jupyter terminal, open but idle, shows the warning
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
  const terminalOutput: string[] = [];
  const ws = new WebSocket(`ws+unix://${join(dir, 'http.sock')}:/w/una/lab/terminals/websocket/${term.name}`, { headers: { authorization: `token ${token}` } });
  ws.on('message', (raw) => {
    const [kind, text] = JSON.parse(String(raw)) as [string, string];
    if (kind === 'stdout') terminalOutput.push(text);
  });
  await new Promise((r, j) => {
    ws.once('open', r);
    ws.once('error', j);
  });

  await suite.test('an idle workspace is warned in its event stream, then stopped', async () => {
    const ws = await t.waitPhase(una, 'una/quiet', ['stopped'], 60_000);
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
    await t.waitPhase(una, 'una/lab', ['stopped'], 60_000);
    assert.match(terminalOutput.join(''), /\[atrium\] no activity for \S+: this workspace stops in about/);
    ws.close();
  });

  await suite.test('an unattended CPU-bound run is never idle', async () => {
    const ws = (await t.call('GET', '/api/v1/teams/una/workspaces/busy', { token: una })).body;
    assert.equal(ws.phase, 'running');
    assert.ok(Date.now() - Date.parse(ws.startedAt) > 16_000, 'past its idle timeout');
    assert.ok(Date.parse(ws.lastActivityAt) > Date.now() - 5_000, 'activity recorded');
  });
});

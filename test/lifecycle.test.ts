import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import { waitUntil } from './helpers.js';
import { sandboxesAvailable, startSandboxServer, type SandboxServer } from './sandbox.js';

const available = sandboxesAvailable();

/** An HTTP request to a workspace's app through its socket, with the token only the platform knows. */
function appRequest(t: SandboxServer, wsId: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const dir = join(t.dataDir, 'local', 'run', wsId);
  const token = readFileSync(join(dir, 'app-token'), 'utf8');
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: join(dir, 'http.sock'), method, path, headers: { authorization: `token ${token}`, 'content-type': 'application/json', host: 'localhost' } }, (res) => {
      let data = '';
      res.on('data', (c) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: data ? JSON.parse(data) : undefined }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

test('workspace lifecycle on the local runtime', { skip: available === true ? false : available }, async (suite) => {
  // two fake GPUs of type "fake": device nodes the allocation logic can hand out (no driver behind them)
  const devDir = mkdtempSync(join(tmpdir(), 'atrium-fake-gpu-'));
  after(() => rmSync(devDir, { recursive: true, force: true }));
  for (const i of [0, 1]) execFileSync('mknod', [join(devDir, `nvidia${i}`), 'c', '195', String(i)]);
  const t = await startSandboxServer({
    'runtime.gpus': [0, 1].map((i) => ({ index: i, type: 'fake', uuid: `GPU-fake-${i}`, path: join(devDir, `nvidia${i}`) })),
    // an uplink this machine lacks: public egress cannot be offered (test/egress.test.ts gives it one)
    'runtime.egress': { uplink: 'atrium-none0' },
  });
  const mia = await t.user('mia');
  await t.addKey(mia, 'mia');
  await t.call('PATCH', '/api/v1/teams/mia/quota', { token: t.adminToken, body: { gpu: { fake: 3 }, workspaces: 20 } });

  await suite.test('a file in the home survives stop and start', async () => {
    await t.call('POST', '/api/v1/teams/mia/workspaces', { token: mia, body: { name: 'keep', profile: 'tiny' } });
    await t.waitPhase(mia, 'mia/keep', ['running']);
    assert.equal((await t.sh('mia/keep', 'echo precious > ~/data.txt && echo ok')).stdout.trim(), 'ok');
    await t.call('POST', '/api/v1/teams/mia/workspaces/keep/stop', { token: mia });
    await t.waitPhase(mia, 'mia/keep', ['stopped']);
    assert.deepEqual(await t.server.runtime!.inventory().then((l) => l.filter((o) => o.phase === 'running').map((o) => o.workspaceId)), []);
    await t.call('POST', '/api/v1/teams/mia/workspaces/keep/start', { token: mia });
    await t.waitPhase(mia, 'mia/keep', ['running']);
    assert.equal((await t.sh('mia/keep', 'cat ~/data.txt')).stdout.trim(), 'precious');
  });

  await suite.test('a jupyter workspace runs code in a kernel over its socket', async () => {
    await t.call('POST', '/api/v1/teams/mia/workspaces', { token: mia, body: { name: 'nb', profile: 'lab' } });
    const ws = await t.waitPhase(mia, 'mia/nb', ['running', 'failed']);
    assert.equal(ws.phase, 'running', ws.reason);
    const id = ws.id as string;
    const contents = await appRequest(t, id, 'GET', '/w/mia/nb/api/contents');
    assert.equal(contents.status, 200);
    assert.equal(contents.body.type, 'directory');
    const denied = await new Promise<number>((resolve) => {
      const req = request({ socketPath: join(t.dataDir, 'local', 'run', id, 'http.sock'), path: '/w/mia/nb/api/contents', headers: { host: 'localhost' } }, (res) => resolve(res.statusCode!));
      req.end();
    });
    assert.equal(denied, 403, 'without the token the app refuses');
    const kernel = await appRequest(t, id, 'POST', '/w/mia/nb/api/kernels', { name: 'python3' });
    assert.equal(kernel.status, 201);
    const token = readFileSync(join(t.dataDir, 'local', 'run', id, 'app-token'), 'utf8');
    const socket = new WebSocket(`ws+unix://${join(t.dataDir, 'local', 'run', id, 'http.sock')}:/w/mia/nb/api/kernels/${kernel.body.id}/channels`, { headers: { authorization: `token ${token}` } });
    const msgId = 'exec-1';
    const result = await new Promise<string>((resolve, reject) => {
      // a kernel's first execution starts Python and IPython in the sandbox: seconds, or much more on a loaded machine
      const timer = setTimeout(() => reject(new Error('no result from the kernel')), 120_000);
      socket.on('open', () =>
        socket.send(JSON.stringify({
          header: { msg_id: msgId, username: 'test', session: 's1', msg_type: 'execute_request', version: '5.3', date: new Date().toISOString() },
          parent_header: {}, metadata: {}, channel: 'shell',
          content: { code: '6*7', silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
        })),
      );
      socket.on('message', (raw) => {
        const m = JSON.parse((raw as Buffer).toString());
        if (m.parent_header?.msg_id === msgId && m.msg_type === 'execute_result') {
          clearTimeout(timer);
          resolve(m.content.data['text/plain']);
        }
      });
      socket.on('error', reject);
    });
    socket.close();
    assert.equal(result, '42');
    // the host-side log writer copies the app's output to its log as it comes: poll the log, do not read it once
    let logs = '';
    await waitUntil("Jupyter's start line in its log", async () => {
      logs = await (await fetch(`${t.url}/api/v1/teams/mia/workspaces/nb/logs?tail=50`, { headers: { authorization: `Bearer ${mia}` } })).text();
      return /Jupyter Notebook .* is running/.test(logs);
    }, { timeoutMs: 30_000 }).catch(() => undefined);
    assert.match(logs, /Jupyter Notebook .* is running/);
  });

  await suite.test('a broken command ends failed with a readable reason and its log', async () => {
    await t.call('POST', '/api/v1/teams/mia/workspaces', { token: mia, body: { name: 'bad', profile: 'broken' } });
    const ws = await t.waitPhase(mia, 'mia/bad', ['failed', 'running']);
    assert.equal(ws.phase, 'failed');
    assert.equal(ws.reason, 'app exited with status 3');
    const events = await t.server.store.events.after({ teamId: ws.id, workspaceId: ws.id }, 0, 100);
    const failed = events.find((e) => e.data.phase === 'failed')!;
    assert.match(String(failed.data.logTail), /about to fail/);
    await t.call('POST', '/api/v1/teams/mia/workspaces', { token: mia, body: { name: 'gone', profile: 'missing' } });
    const missing = await t.waitPhase(mia, 'mia/gone', ['failed', 'running']);
    assert.equal(missing.reason, 'app exited with status 127');
    const usage = (await t.call('GET', '/api/v1/teams/mia/usage', { token: mia })).body.usage;
    assert.ok(!['broken', 'missing'].some(() => usage.cpu === '0'), 'failed workspaces release compute');
  });

  await suite.test('GPUs are given whole and exclusively, and released on stop', async () => {
    await t.call('POST', '/api/v1/gpu-pools', { token: t.adminToken, body: { name: 'fakes', gpuType: 'fake', size: 2, owner: 'mia' } });
    for (const name of ['g1', 'g2']) await t.call('POST', '/api/v1/teams/mia/workspaces', { token: mia, body: { name, profile: 'gpu' } });
    await t.waitPhase(mia, 'mia/g1', ['running']);
    await t.waitPhase(mia, 'mia/g2', ['running']);
    const r1 = await t.sh('mia/g1', 'echo $CUDA_VISIBLE_DEVICES $NVIDIA_VISIBLE_DEVICES; ls /dev | grep nvidia');
    assert.equal(r1.code, 0, r1.stderr);
    const env1 = r1.stdout;
    const env2 = (await t.sh('mia/g2', 'echo $CUDA_VISIBLE_DEVICES $NVIDIA_VISIBLE_DEVICES; ls /dev | grep nvidia')).stdout;
    const [i1, i2] = [env1, env2].map((e) => e.split(/\s+/)[0]);
    assert.notEqual(i1, i2, 'each holds a different GPU');
    assert.match(env1, new RegExp(`GPU-fake-${i1}\\nnvidia${i1}\\n$`));
    const g1 = await t.wsId('mia/g1');
    const rules = readFileSync(`/sys/fs/cgroup/devices/atrium/${g1}/devices.list`, 'utf8');
    assert.match(rules, new RegExp(`c 195:${i1} rw`));
    assert.doesNotMatch(rules, new RegExp(`c 195:${i2} `));
    const third = await t.call('POST', '/api/v1/teams/mia/workspaces', { token: mia, body: { name: 'g3', profile: 'gpu' } });
    assert.equal(third.status, 403);
    assert.equal(third.body.error.code, 'grant_exceeded');
    await t.call('POST', '/api/v1/teams/mia/workspaces/g1/stop', { token: mia });
    await t.waitPhase(mia, 'mia/g1', ['stopped']);
    assert.deepEqual((await t.server.runtime!.capacity()).gpus.map((g) => g.heldBy !== null), [i1 === '0' ? false : true, i1 === '0' ? true : false]);
    assert.equal((await t.call('POST', '/api/v1/teams/mia/workspaces', { token: mia, body: { name: 'g3', profile: 'gpu' } })).status, 201);
    await t.waitPhase(mia, 'mia/g3', ['running']);
    assert.equal((await t.sh('mia/g3', 'echo $CUDA_VISIBLE_DEVICES')).stdout.trim(), i1, "g3 gets the GPU g1 gave back");
  });

  await suite.test('admission refuses what this machine cannot run, saying why', async () => {
    const admin = t.adminToken;
    await t.call('PATCH', '/api/v1/teams/mia/quota', { token: admin, body: { cpu: '1000', memory: '1000Gi', gpu: { fake: 2, h100: 1 } } });
    const huge = await t.call('POST', '/api/v1/teams/mia/workspaces', { token: mia, body: { name: 'huge', profile: 'huge' } });
    assert.equal(huge.status, 403);
    assert.equal(huge.body.error.code, 'capacity_exceeded');
    assert.match(huge.body.error.message, /^this machine cpu: 64 guaranteed requested, \S+ of \S+ left$/);
    const vault = await t.call('POST', '/api/v1/teams/mia/workspaces', { token: mia, body: { name: 'vault', profile: 'vault' } });
    assert.equal(vault.body.error.code, 'tier_unavailable');
    assert.match(vault.body.error.message, /no hardware virtualisation/);
    const h100 = await t.call('POST', '/api/v1/teams/mia/workspaces', { token: mia, body: { name: 'h100', profile: 'h100' } });
    assert.equal(h100.body.error.code, 'no_gpu');
    assert.equal(h100.body.error.message, 'this machine has no GPU of type h100; profile h100 needs 1');
    const online = await t.call('POST', '/api/v1/teams/mia/workspaces', { token: mia, body: { name: 'online', profile: 'online' } });
    assert.equal(online.body.error.code, 'egress_unavailable');
    assert.equal(online.body.error.message, 'profile online asks for public egress: runtime.egress.uplink: no interface atrium-none0 on this host');
  });
});

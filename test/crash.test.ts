import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { waitUntil } from './helpers.js';
import { AGENT, PROFILES, run, sandboxesAvailable, serveProcess, uidBase } from './sandbox.js';

/**
 * The control plane is killed with SIGKILL again and again while workspaces
 * start and stop; afterwards every phase matches reality and nothing is left
 * over: containers, cgroups, mounts, processes, run directories, GPUs.
 */
const available = sandboxesAvailable();

test('kill -9 of the control plane during starts and stops leaves no orphans', { skip: available === true ? false : available, timeout: 600_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'atrium-crash-'));
  const config = join(dataDir, 'atrium.yaml');
  const { writeFileSync } = await import('node:fs');
  const base = uidBase();
  // two fake GPUs, so GPU holds are part of what must match after the crashes
  const { execFileSync } = await import('node:child_process');
  for (const i of [0, 1]) execFileSync('mknod', [join(dataDir, `nvidia${i}`), 'c', '195', String(i)]);
  const gpus = [0, 1].map((i) => ({ index: i, type: 'fake', uuid: `GPU-fake-${i}`, path: join(dataDir, `nvidia${i}`) }));
  writeFileSync(config, JSON.stringify({ profiles: PROFILES, runtime: { agent: AGENT, stopGrace: '2s', reserve: { cpu: '0', memory: '0' }, uidBase: base, gpus }, logLevel: 'warn' }));
  const atrium = serveProcess({ config, dataDir });
  after(() => atrium.cleanUp());
  const { start, call } = atrium;

  await start();
  const token = await atrium.login();
  await call('PATCH', '/api/v1/teams/admin/quota', token, { workspaces: 50, cpu: '100', memory: '100Gi', storage: '100Gi', gpu: { fake: 2 } });
  await call('POST', '/api/v1/gpu-pools', token, { name: 'fakes', gpuType: 'fake', size: 2, owner: 'admin' });
  const names = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'g1', 'g2'];
  for (const name of names) await call('POST', '/api/v1/teams/admin/workspaces', token, { name, profile: name.startsWith('g') ? 'gpu' : 'tiny', start: false });

  // a file written before the crashes must survive them
  /** Waits until c1 runs (or has failed, which the assertion then shows). */
  const c1Running = async () => {
    let last: any;
    await waitUntil('c1 to run', async () => {
      last = (await call('GET', '/api/v1/teams/admin/workspaces/c1', token)).body;
      return last.phase === 'running' || last.phase === 'failed';
    }, { timeoutMs: 120_000, last: () => last });
    assert.equal(last.phase, 'running', `c1: ${JSON.stringify(last)}`);
    return last.id as string;
  };
  await call('POST', '/api/v1/teams/admin/workspaces/c1/start', token);
  const c1 = await c1Running();
  const wrote = await run('runc', ['--root', join(dataDir, 'local', 'runc'), 'exec', '--user', `${base}:${base}`, c1, 'sh', '-c', 'echo survived > /home/jovyan/proof']);
  assert.equal(wrote.code, 0, wrote.stderr);

  for (let round = 0; round < 10; round++) {
    // flip a random half of the workspaces, all at once, then kill the control plane mid-way
    await atrium.flipAndKill(token, names, 700);
    await start();
  }

  // the last control plane settled (what never does is what the assertions below report)
  const runcRoot = join(dataDir, 'local', 'runc');
  const list = await atrium.settled(token);
  const failed = list.filter((w) => w.phase === 'failed');
  assert.deepEqual(failed.map((w) => `${w.name}: ${w.reason}`), [], 'no workspace failed');
  const running = new Set(list.filter((w) => w.phase === 'running').map((w) => w.id as string));
  for (const w of list) assert.equal(w.phase, w.desired === 'running' ? 'running' : w.phase === 'pending' ? 'pending' : 'stopped', `${w.name} ${w.desired}/${w.phase}`);

  const containers = (await run('runc', ['--root', runcRoot, 'list', '--format', 'json'])).stdout;
  const live = (JSON.parse(containers || '[]') as Array<{ id: string; status: string }> | null ?? []);
  assert.deepEqual(live.filter((c) => c.status === 'running').map((c) => c.id).sort(), [...running].sort(), 'runc list matches');
  assert.deepEqual(live.filter((c) => c.status !== 'running'), [], 'no stopped or half-made containers');
  for (const controller of ['memory', 'pids', 'cpu', 'cpuacct', 'devices', 'freezer']) {
    const dir = `/sys/fs/cgroup/${controller}/atrium`;
    const groups = existsSync(dir) ? readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory() && d.name.startsWith('w_')).map((d) => d.name) : [];
    assert.deepEqual(groups.filter((g) => list.some((w) => w.id === g)).sort(), groups.filter((g) => running.has(g)).sort(), `${controller} cgroups match`);
    assert.deepEqual(groups.filter((g) => list.some((w) => w.id === g) && !running.has(g)), [], `no ${controller} cgroup for a stopped workspace`);
  }
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(join(dataDir, 'local', 'mnt')));
  assert.deepEqual(mounts.map((m) => m.split('/').at(-1)).sort(), [...running].sort(), 'home mounts match');
  // processes of a sandbox being killed may take a moment to be reaped
  let strays: string[] = [];
  await waitUntil('stray processes to be reaped', async () => {
    const procs = (await run('ps', ['-eo', 'uid=,pid=,stat=,comm=,cgroup='])).stdout.split('\n').filter((l) => Number(l.trim().split(/\s+/)[0]) === base);
    strays = procs.filter((l) => ![...running].some((id) => l.includes(`${id},`) || l.endsWith(id)));
    return strays.length === 0;
  }, { timeoutMs: 30_000, everyMs: 200 }).catch(() => undefined);
  assert.deepEqual(strays, [], 'every workspace-uid process is inside a running sandbox');
  const runDirs = readdirSync(join(dataDir, 'local', 'run'));
  assert.ok(runDirs.every((id) => list.some((w) => w.id === id)), 'run directories belong to workspaces');
  for (const id of runDirs) {
    const bundle = existsSync(join(dataDir, 'local', 'run', id, 'bundle'));
    assert.equal(bundle, running.has(id), `${id}: a bundle exactly while it runs`);
  }
  // GPUs are held by running GPU workspaces only, each by one
  const held = runDirs.flatMap((id) => {
    const meta = existsSync(join(dataDir, 'local', 'run', id, 'meta.json')) ? (JSON.parse(readFileSync(join(dataDir, 'local', 'run', id, 'meta.json'), 'utf8')) as { gpus: number[] }) : { gpus: [] };
    return meta.gpus.map((g) => ({ id, g }));
  });
  const gpuRunning = list.filter((w) => w.name.startsWith('g') && w.phase === 'running').map((w) => w.id as string);
  assert.deepEqual(held.map((h) => h.id).sort(), gpuRunning.sort(), 'GPU holds match the running GPU workspaces');
  assert.equal(new Set(held.map((h) => h.g)).size, held.length, 'no GPU held twice');

  // the file survives, whatever state c1 ended in
  const c1state = list.find((w) => w.name === 'c1');
  if (c1state.phase !== 'running') {
    await call('POST', '/api/v1/teams/admin/workspaces/c1/start', token);
    await c1Running();
  }
  const proof = await run('runc', ['--root', runcRoot, 'exec', '--user', `${base}:${base}`, c1, 'cat', '/home/jovyan/proof']);
  assert.equal(proof.stdout.trim(), 'survived');
});

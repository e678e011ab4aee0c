import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { sandboxesAvailable, startSandboxServer } from './sandbox.js';

/** Resource limits hold inside one workspace while its neighbour keeps serving. */
const available = sandboxesAvailable();

test('resource limits', { skip: available === true ? false : available }, async (suite) => {
  const t = await startSandboxServer();
  const alice = await t.user('alice');
  const bob = await t.user('bob');
  await t.addKey(alice, 'alice');
  await t.addKey(bob, 'bob');
  await t.call('POST', '/api/v1/teams/alice/workspaces', { token: alice, body: { name: 'hog', profile: 'tiny' } });
  await t.call('POST', '/api/v1/teams/bob/workspaces', { token: bob, body: { name: 'calm', profile: 'tiny' } });
  await t.waitPhase(alice, 'alice/hog', ['running']);
  await t.waitPhase(bob, 'bob/calm', ['running']);
  const hogId = await t.wsId('alice/hog');

  await suite.test('a memory hog beyond the limit is OOM-killed while B keeps serving', async () => {
    const r = await t.sh('alice/hog', `python3 -c "
blocks = []
while True: blocks.append(bytearray(16 << 20))"; echo exit=$?`);
    assert.match(r.stdout, /exit=137/, 'killed by SIGKILL from the OOM killer');
    const oomKills = Number(/oom_kill (\d+)/.exec(readFileSync(`/sys/fs/cgroup/memory/atrium/${hogId}/memory.oom_control`, 'utf8'))?.[1]);
    assert.ok(oomKills > 0, 'the cgroup counted an OOM kill');
    assert.equal((await t.sh('bob/calm', 'echo alive')).stdout.trim(), 'alive');
    assert.equal((await t.call('GET', '/api/v1/teams/alice/workspaces/hog', { token: alice })).body.phase, 'running', 'the workspace itself survives');
  });

  await suite.test('a fork bomb stops at the pids limit', async () => {
    // every child sleeps a few seconds and goes, so the sandbox can fork again once the test is done
    const r = await t.sh('alice/hog', `python3 -c "
import os
pids = []
try:
    while len(pids) < 3000:
        pids.append(os.posix_spawn('/usr/bin/sleep', ['sleep', '6'], {}))
except OSError as e:
    print('refused errno', e.errno)
print('started=%d' % len(pids))
for p in pids: os.waitpid(p, 0)"`, 120_000);
    assert.match(r.stdout, /refused errno 11/, 'EAGAIN from the pids controller');
    const started = Number(/started=(\d+)/.exec(r.stdout)?.[1]);
    assert.ok(started < 1024, `started ${started} processes: ${r.stdout}${r.stderr}`);
    const peak = Number(readFileSync(`/sys/fs/cgroup/pids/atrium/${hogId}/pids.max`, 'utf8'));
    assert.equal(peak, 1024);
    assert.equal((await t.sh('bob/calm', 'echo alive')).stdout.trim(), 'alive');
  });

  await suite.test('a 0.5-CPU limit holds a CPU hog to 0.55 CPU-seconds per second over 10 s', async () => {
    const usage = () => Number(readFileSync(`/sys/fs/cgroup/cpuacct/atrium/${hogId}/cpuacct.usage`, 'utf8'));
    const hog = t.sh('alice/hog', 'for i in 1 2; do timeout 12 sh -c "while :; do :; done" & done; wait', 60_000);
    await new Promise((r) => setTimeout(r, 1000));
    const u0 = usage();
    const t0 = process.hrtime.bigint();
    await new Promise((r) => setTimeout(r, 10_000));
    const used = (usage() - u0) / 1e9;
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await hog;
    const rate = used / seconds;
    assert.ok(rate <= 0.55, `used ${rate.toFixed(3)} CPU-seconds per second`);
    assert.ok(rate >= 0.3, `the hog ran at all (${rate.toFixed(3)})`);
  });

  await suite.test('writing past the storage size fails with "No space left" while B is unaffected', async () => {
    const r = await t.sh('alice/hog', 'dd if=/dev/zero of=$HOME/fill bs=1M count=100 2>&1; echo exit=$?');
    assert.match(r.stdout, /No space left on device/);
    assert.doesNotMatch(r.stdout, /exit=0/);
    assert.equal((await t.sh('bob/calm', 'dd if=/dev/zero of=$HOME/ok bs=1M count=8 2>/dev/null && echo wrote')).stdout.trim(), 'wrote');
    await t.sh('alice/hog', 'rm -f $HOME/fill');
  });
});

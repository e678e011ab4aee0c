import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { PROFILES, run, sandboxesAvailable, startSandboxServer } from './sandbox.js';

/**
 * Team volumes on the local runtime: loop-mounted ext4 images shared by a
 * team's workspaces, sized under the team's storage quota, published
 * read-only to other teams as datasets. Commands run in the workspaces over
 * SSH, as their users.
 */
const available = sandboxesAvailable();

test('team volumes and datasets', { skip: available === true ? false : available }, async (suite) => {
  const t = await startSandboxServer({ profiles: [...PROFILES, { name: 'mounted', displayName: 'Mounted', environment: 'shell', cpu: { guarantee: '50m', limit: '500m' }, memory: { guarantee: '32Mi', limit: '128Mi' }, storage: '16Mi', volumes: [{ volume: 'shared', path: '/home/jovyan/shared' }] }] });
  const admin = t.adminToken;
  const users = { ada: await t.user('ada'), bo: await t.user('bo'), cy: await t.user('cy'), eve: await t.user('eve') };
  for (const [name, token] of Object.entries(users)) await t.addKey(token, name);
  // ml: ada owns, bo edits, cy views; cv: eve owns. Storage quotas: 300Mi each
  for (const [team, owner] of [['ml', 'ada'], ['cv', 'eve']] as const) {
    const r = await t.call('POST', '/api/v1/teams', { token: admin, body: { name: team, owner, quota: { cpu: '4', memory: '4Gi', storage: '300Mi', workspaces: 10, gpu: {} } } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  assert.equal((await t.call('PUT', '/api/v1/teams/ml/members/bo', { token: users.ada, body: { role: 'editor' } })).status, 200);
  assert.equal((await t.call('PUT', '/api/v1/teams/ml/members/cy', { token: users.ada, body: { role: 'editor' } })).status, 200);

  const create = (team: string, token: string, name: string, profile: string, volumes?: Array<{ volume: string; path?: string }>) =>
    t.call('POST', `/api/v1/teams/${team}/workspaces`, { token, body: { name, profile, ...(volumes ? { volumes } : {}) } });
  const running = async (token: string, ref: string) => {
    const ws = await t.waitPhase(token, ref, ['running', 'failed']);
    assert.equal(ws.phase, 'running', ws.reason);
  };

  await suite.test("a volume's size counts against the team's storage quota, at creation and when it grows; volumes never shrink", async () => {
    const tooBig = await t.call('POST', '/api/v1/teams/ml/volumes', { token: users.bo, body: { name: 'huge', size: '1Gi' } });
    assert.equal(tooBig.status, 403);
    assert.equal(tooBig.body.error.code, 'quota_exceeded');
    assert.match(tooBig.body.error.message, /team ml storage: 1Gi requested, 300Mi of 300Mi left/);
    const made = await t.call('POST', '/api/v1/teams/ml/volumes', { token: users.bo, body: { name: 'shared', size: '64Mi', readOnlyFor: 'viewers' } });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    assert.equal(made.body.size, '64Mi');
    assert.equal((await t.call('POST', '/api/v1/teams/ml/volumes', { token: users.bo, body: { name: 'corpus', size: '32Mi' } })).status, 201);
    const usage = await t.call('GET', '/api/v1/teams/ml/usage', { token: users.ada });
    assert.equal(usage.body.usage.storage, '96Mi', JSON.stringify(usage.body));
    const grow = await t.call('PATCH', '/api/v1/teams/ml/volumes/corpus', { token: users.bo, body: { size: '300Mi' } });
    assert.equal(grow.status, 403);
    assert.match(grow.body.error.message, /268Mi requested, 204Mi of 300Mi left/);
    const shrink = await t.call('PATCH', '/api/v1/teams/ml/volumes/shared', { token: users.bo, body: { size: '32Mi' } });
    assert.equal(shrink.status, 400);
    assert.match(shrink.body.error.message, /only grow/);
    const viewerMade = await t.call('PUT', '/api/v1/teams/ml/members/cy', { token: users.ada, body: { role: 'viewer' } });
    assert.equal(viewerMade.status, 200);
    assert.equal((await t.call('POST', '/api/v1/teams/ml/volumes', { token: users.cy, body: { name: 'mine', size: '16Mi' } })).status, 403, 'viewers make no volumes');
    assert.equal((await t.call('PUT', '/api/v1/teams/ml/members/cy', { token: users.ada, body: { role: 'editor' } })).status, 200);
  });

  await suite.test("two workspaces of a team see each other's writes, and each may change the other's files", async () => {
    assert.equal((await create('ml', users.ada, 'wa', 'mounted')).status, 201);
    assert.equal((await create('ml', users.bo, 'wb', 'tiny', [{ volume: 'shared', path: '/data/team' }, { volume: 'corpus' }])).status, 201);
    await running(users.ada, 'ml/wa');
    await running(users.bo, 'ml/wb');
    const write = await t.sh('ml/wa', 'echo from-a > ~/shared/note && id -Gn', 30_000, { user: 'ada' });
    assert.equal(write.code, 0, write.stderr);
    assert.match(write.stdout, /\bteam\b/, "the workspace user is in the team's group");
    const read = await t.sh('ml/wb', 'cat /data/team/note && echo from-b >> /data/team/note && echo filled > /data/corpus/readme', 30_000, { user: 'bo' });
    assert.equal(read.code, 0, read.stderr);
    assert.equal(read.stdout.trim(), 'from-a');
    const again = await t.sh('ml/wa', 'cat ~/shared/note', 30_000, { user: 'ada' });
    assert.equal(again.stdout.trim(), 'from-a\nfrom-b');
  });

  await suite.test('a volume grows: at once where the kernel can grow a mounted filesystem, else once no workspace mounts it', async () => {
    const size = async () => Number((await t.sh('ml/wb', 'df -B1M --output=size /data/team | tail -1', 30_000, { user: 'bo' })).stdout.trim());
    const before = await size();
    assert.ok(before >= 50 && before <= 64, `${before} MiB`);
    assert.equal((await t.call('PATCH', '/api/v1/teams/ml/volumes/shared', { token: users.bo, body: { size: '128Mi' } })).status, 200);
    // growing a mounted ext4 takes CAP_SYS_RESOURCE, which some hosts (this test's among them) do not grant even to root
    for (const [ref, token] of [['wa', users.ada], ['wb', users.bo]] as const) assert.equal((await t.call('POST', `/api/v1/teams/ml/workspaces/${ref}/stop`, { token })).status, 200);
    for (const [ref, token] of [['ml/wa', users.ada], ['ml/wb', users.bo]] as const) await t.waitPhase(token, ref, ['stopped']);
    for (const [ref, token] of [['wa', users.ada], ['wb', users.bo]] as const) assert.equal((await t.call('POST', `/api/v1/teams/ml/workspaces/${ref}/start`, { token })).status, 200);
    await running(users.ada, 'ml/wa');
    await running(users.bo, 'ml/wb');
    const after = await size();
    assert.ok(after >= 110 && after <= 128, `${before} MiB → ${after} MiB`);
    assert.equal((await t.sh('ml/wa', 'cat ~/shared/note', 30_000, { user: 'ada' })).stdout.trim(), 'from-a\nfrom-b', 'nothing lost');
  });

  await suite.test('a dataset is read-only where it is published, by the kernel; another team cannot mount a volume not published to it', async () => {
    const refused = await create('cv', users.eve, 'snoop', 'tiny', [{ volume: 'ml/shared' }]);
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'volume_not_allowed');
    const own = await create('cv', users.eve, 'snoop', 'tiny', [{ volume: 'shared' }]);
    assert.equal(own.status, 403, 'nor by its own name');
    const notAdmin = await t.call('PATCH', '/api/v1/teams/ml/volumes/corpus', { token: users.ada, body: { sharedWith: ['cv'] } });
    assert.equal(notAdmin.status, 403, 'only admins publish');
    const published = await t.call('PATCH', '/api/v1/teams/ml/volumes/corpus', { token: admin, body: { sharedWith: ['cv'] } });
    assert.equal(published.status, 200, JSON.stringify(published.body));
    assert.deepEqual(published.body.sharedWith, ['cv']);
    const listed = await t.call('GET', '/api/v1/teams/cv/volumes', { token: users.eve });
    assert.deepEqual(listed.body.datasets.map((v: { team: string; name: string }) => `${v.team}/${v.name}`), ['ml/corpus']);
    assert.equal((await create('cv', users.eve, 'reader', 'tiny', [{ volume: 'ml/corpus' }])).status, 201);
    await running(users.eve, 'cv/reader');
    const r = await t.sh('cv/reader', 'cat /data/corpus/readme; touch /data/corpus/mine 2>&1; echo rc=$?; chmod 777 /data/corpus 2>&1; grep " /data/corpus " /proc/self/mounts', 30_000, { user: 'eve' });
    assert.match(r.stdout, /^filled$/m);
    assert.match(r.stdout, /Read-only file system/);
    assert.match(r.stdout, /rc=1/);
    assert.match(r.stdout, /\/data\/corpus ext4 ro,/, 'mounted read-only');
  });

  await suite.test("read-only for viewers: a workspace whose owner is a viewer mounts the volume read-only at its next start", async () => {
    assert.equal((await create('ml', users.cy, 'wc', 'tiny', [{ volume: 'shared' }])).status, 201);
    await running(users.cy, 'ml/wc');
    assert.equal((await t.sh('ml/wc', 'touch /data/shared/by-cy && echo ok', 30_000, { user: 'cy' })).stdout.trim(), 'ok');
    assert.equal((await t.call('PUT', '/api/v1/teams/ml/members/cy', { token: users.ada, body: { role: 'viewer' } })).status, 200);
    // the owner (an admin may too) restarts it; cy may no longer operate it
    assert.equal((await t.call('POST', '/api/v1/teams/ml/workspaces/wc/stop', { token: admin })).status, 200);
    await t.waitPhase(admin, 'ml/wc', ['stopped']);
    assert.equal((await t.call('POST', '/api/v1/teams/ml/workspaces/wc/start', { token: admin })).status, 200);
    await running(admin, 'ml/wc');
    // a viewer may not connect: look from the host, inside the sandbox's mount namespace (even root there is refused)
    const pid = readFileSync(join(t.dataDir, 'local', 'run', await t.wsId('ml/wc'), 'pid'), 'utf8').trim();
    const r = await run('nsenter', ['-t', pid, '-m', 'sh', '-c', 'touch /data/shared/again 2>&1; ls /data/shared']);
    assert.match(r.stdout, /Read-only file system/);
    assert.match(r.stdout, /by-cy/);
    assert.match(readFileSync(`/proc/${pid}/mounts`, 'utf8'), / \/data\/shared ext4 ro,/);
  });

  await suite.test('a volume survives every workspace using it, and goes only once none mounts it', async () => {
    const inUse = await t.call('DELETE', '/api/v1/teams/ml/volumes/shared', { token: users.ada });
    assert.equal(inUse.status, 409);
    assert.equal(inUse.body.error.code, 'volume_in_use');
    for (const [ref, token] of [['ml/wa', users.ada], ['ml/wb', users.bo], ['ml/wc', admin], ['cv/reader', users.eve]] as const) {
      assert.equal((await t.call('DELETE', `/api/v1/teams/${ref.replace('/', '/workspaces/')}?purge=true`, { token })).status, 204);
    }
    for (const ref of ['ml/wa', 'ml/wb', 'ml/wc', 'cv/reader']) {
      for (let i = 0; i < 300 && (await t.call('GET', `/api/v1/teams/${ref.replace('/', '/workspaces/')}`, { token: admin })).status !== 404; i++) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal((await create('ml', users.ada, 'later', 'mounted')).status, 201);
    await running(users.ada, 'ml/later');
    assert.equal((await t.sh('ml/later', 'cat ~/shared/note', 30_000, { user: 'ada' })).stdout.trim(), 'from-a\nfrom-b');
    assert.equal((await t.call('DELETE', '/api/v1/teams/ml/workspaces/later?purge=true', { token: users.ada })).status, 204);
    const images = () => readdirSync(join(t.dataDir, 'local', 'volumes')).filter((f) => f.endsWith('.img'));
    assert.equal(images().length, 2);
    let gone = 0;
    for (let i = 0; i < 300 && gone !== 204; i++) {
      gone = (await t.call('DELETE', '/api/v1/teams/ml/volumes/shared', { token: users.ada })).status;
      if (gone !== 204) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(gone, 204);
    for (let i = 0; i < 100 && images().length !== 1; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(images().length, 1, 'its image is removed');
    assert.ok(!existsSync(join(t.dataDir, 'local', 'volumes', 'mnt', 'shared')));
  });
});

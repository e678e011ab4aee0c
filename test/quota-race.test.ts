import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { databaseKinds, startServer, type TestServer } from './helpers.js';

/**
 * Concurrent creates race for the last slots of a team's quota (and of a GPU
 * pool shared by two teams); admission must let through exactly what fits.
 */
const PROFILES = [
  {
    name: 'unit',
    displayName: 'Unit',
    environment: 'shell',
    cpu: { guarantee: '100m', limit: '250m' },
    memory: { guarantee: '128Mi', limit: '256Mi' },
    storage: '1Gi',
  },
  {
    name: 'gpu-unit',
    displayName: 'GPU unit',
    environment: 'shell',
    cpu: { guarantee: '100m', limit: '100m' },
    memory: { guarantee: '64Mi', limit: '64Mi' },
    gpu: { count: 1, type: 'a100' },
    storage: '100Mi',
  },
];

async function race(t: TestServer, token: string, team: string, profile: string, n: number, prefix: string) {
  const results = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      t.call('POST', `/api/v1/teams/${team}/workspaces`, { token, body: { name: `${prefix}-${i}`, profile } }),
    ),
  );
  const ok = results.filter((r) => r.status === 201).length;
  const refused = results.filter((r) => r.status !== 201);
  return { ok, refused };
}

for (const kind of databaseKinds()) {
  describe(`quota races (${kind})`, () => {
    test('20 concurrent creates for the last slot of cpu, memory, storage and count: exactly one wins', async () => {
      const t = await startServer({ database: kind, poolSize: 10, flags: { profiles: PROFILES } });
      const token = await t.user('racer');
      // Every dimension has room for exactly 5 "unit" workspaces.
      const quota = { cpu: '1250m', memory: '1280Mi', storage: '5Gi', workspaces: 5 };
      assert.equal((await t.call('POST', '/api/v1/teams', { token: t.adminToken, body: { name: 'race', owner: 'racer', quota } })).status, 201);
      for (let i = 0; i < 4; i++) {
        assert.equal((await t.call('POST', '/api/v1/teams/race/workspaces', { token, body: { name: `pre-${i}`, profile: 'unit' } })).status, 201);
      }
      const { ok, refused } = await race(t, token, 'race', 'unit', 20, 'last');
      assert.equal(ok, 1);
      for (const r of refused) {
        assert.equal(r.status, 403);
        assert.equal(r.body.error.code, 'quota_exceeded');
        assert.match(r.body.error.message, /^team race (workspaces|storage|cpu|memory): .* requested, 0 of .* left$/);
      }
      const usage = (await t.call('GET', '/api/v1/teams/race/usage', { token })).body;
      assert.deepEqual(usage.usage, { ...quota, gpu: {} });
      assert.deepEqual(usage.quota, { ...quota, gpu: {} });
      const list = (await t.call('GET', '/api/v1/teams/race/workspaces?limit=100', { token })).body;
      assert.equal(list.items.length, 5);
    });

    test('20 concurrent creates with room for 3: exactly 3 win, then stop/start keeps the count', async () => {
      const t = await startServer({ database: kind, poolSize: 10, flags: { profiles: PROFILES } });
      const token = await t.user('racer');
      const quota = { cpu: '750m', memory: '768Mi', storage: '100Gi', workspaces: 100 };
      await t.call('POST', '/api/v1/teams', { token: t.adminToken, body: { name: 'race', owner: 'racer', quota } });
      const { ok } = await race(t, token, 'race', 'unit', 20, 'w');
      assert.equal(ok, 3);
      const usage = (await t.call('GET', '/api/v1/teams/race/usage', { token })).body.usage;
      assert.equal(usage.cpu, '750m');
      assert.equal(usage.memory, '768Mi');
      assert.equal(usage.workspaces, 3);
      // Racing start requests on a stopped workspace against a full quota: none may overshoot.
      const created = (await t.call('GET', '/api/v1/teams/race/workspaces', { token })).body.items as Array<{ name: string }>;
      await t.call('POST', `/api/v1/teams/race/workspaces/${created[0]!.name}/stop`, { token });
      const spare = await t.call('POST', '/api/v1/teams/race/workspaces', { token, body: { name: 'spare', profile: 'unit', start: false } });
      assert.equal(spare.status, 201);
      const starts = await Promise.all(
        [created[0]!.name, 'spare', created[0]!.name, 'spare'].map((n) => t.call('POST', `/api/v1/teams/race/workspaces/${n}/start`, { token })),
      );
      const after = (await t.call('GET', '/api/v1/teams/race/usage', { token })).body.usage;
      assert.equal(after.cpu, '750m');
      assert.ok(starts.some((s) => s.status === 200));
      assert.ok(starts.some((s) => s.status === 403 && s.body.error.code === 'quota_exceeded'));
    });

    test('two teams race for a shared GPU pool: its size is never exceeded, nor either grant', async () => {
      const t = await startServer({ database: kind, poolSize: 10, flags: { profiles: PROFILES } });
      const a = await t.user('alice');
      const b = await t.user('bob');
      const quota = { cpu: '100', memory: '100Gi', storage: '100Gi', workspaces: 100, gpu: { a100: 10 } };
      await t.call('POST', '/api/v1/teams', { token: t.adminToken, body: { name: 'team-a', owner: 'alice', quota } });
      await t.call('POST', '/api/v1/teams', { token: t.adminToken, body: { name: 'team-b', owner: 'bob', quota } });
      assert.equal((await t.call('POST', '/api/v1/gpu-pools', { token: t.adminToken, body: { name: 'dgx', gpuType: 'a100', size: 4 } })).status, 201);
      await t.call('PUT', '/api/v1/gpu-pools/dgx/grants/team-a', { token: t.adminToken, body: { limit: 3 } });
      await t.call('PUT', '/api/v1/gpu-pools/dgx/grants/team-b', { token: t.adminToken, body: { limit: 3 } });
      const [ra, rb] = await Promise.all([race(t, a, 'team-a', 'gpu-unit', 10, 'g'), race(t, b, 'team-b', 'gpu-unit', 10, 'g')]);
      assert.equal(ra.ok + rb.ok, 4);
      assert.ok(ra.ok <= 3 && rb.ok <= 3);
      for (const r of [...ra.refused, ...rb.refused]) assert.equal(r.body.error.code, 'grant_exceeded');
      const pool = (await t.call('GET', '/api/v1/gpu-pools/dgx', { token: a })).body;
      assert.equal(pool.used, 4);
    });
  });
}

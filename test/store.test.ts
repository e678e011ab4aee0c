import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { chargesCompute, DESIRED_STATES, PHASES, profileFromSpec, quotaFromSpec } from '../src/domain/index.js';
import { Migrator, type Kysely } from 'kysely';
import { createStore, migrations, openDatabase } from '../src/store/index.js';
import { databaseKinds, freshDatabase } from './helpers.js';

const quota = quotaFromSpec({ cpu: '1000', memory: '1000Gi', storage: '100Ti', workspaces: 1000, gpu: {} });
const small = profileFromSpec({ name: 'small', displayName: 'S', description: '', environment: 'shell', cpu: { guarantee: '100m', limit: '250m' }, memory: { guarantee: '1Mi', limit: '2Mi' }, storage: '1Gi', tier: 'standard', egress: 'none' });

for (const kind of databaseKinds()) {
  describe(`store (${kind})`, () => {
    test('migrations run once and reopening is a no-op', async () => {
      const target = await freshDatabase(kind);
      const a = await createStore(target);
      await a.users.create({ username: 'keep' }, quota);
      await a.close();
      const b = await createStore(target);
      assert.ok(await b.users.byUsername('keep'));
      await b.close();
    });

    test('an older install upgrades: its workspaces gain their team, owner and GPU pool names', async () => {
      const target = await freshDatabase(kind);
      const { db, dialect } = openDatabase(target);
      const migrated = await new Migrator({ db, provider: migrations(dialect) }).migrateTo('0002_host_uids');
      assert.equal(migrated.error, undefined);
      const old = db as unknown as Kysely<Record<string, Record<string, unknown>>>;
      await old.insertInto('users').values({ id: 'u1', username: 'olga', created_at: 1, updated_at: 1 }).execute();
      await old.insertInto('teams').values({ id: 't1', name: 'olga', personal_of: 'u1', quota: JSON.stringify(quota), created_at: 1, updated_at: 1 }).execute();
      await old.insertInto('teams').values({ id: 't2', name: 'vision', quota: JSON.stringify(quota), created_at: 1, updated_at: 1 }).execute();
      await old.insertInto('gpu_pools').values({ id: 'p1', name: 'a100-lab', gpu_type: 'a100', cluster: 'local', size: 4, created_at: 1, updated_at: 1 }).execute();
      for (const [teamId, name] of [['t1', 'lab'], ['t2', 'train']]) {
        await old.insertInto('memberships').values({ team_id: teamId, user_id: 'u1', role: 'owner', created_at: 1 }).execute();
        const r = small.resources;
        await old
          .insertInto('workspaces')
          .values({
            id: `w_${name}`, team_id: teamId, name, owner_id: 'u1', profile: 'small', desired: 'stopped', phase: 'stopped',
            cpu_request_milli: r.cpuRequestMilli, cpu_limit_milli: r.cpuLimitMilli, memory_request_bytes: r.memoryRequestBytes, memory_limit_bytes: r.memoryLimitBytes,
            gpu_count: name === 'train' ? 1 : 0, gpu_type: name === 'train' ? 'a100' : null, gpu_pool_id: name === 'train' ? 'p1' : null, storage_bytes: r.storageBytes, spec: JSON.stringify({ environment: small.environment, tier: 'standard', egress: 'none', idleTimeoutSeconds: null }),
            generation: 1, observed_generation: 1, created_at: 1, updated_at: 1,
          })
          .execute();
      }
      await db.destroy();
      const store = await createStore(target);
      const mine = await store.workspaces.listVisible({ userId: 'u1', ownerId: 'u1', limit: 10 });
      assert.deepEqual(mine.items.map((w) => [w.team, w.name, w.owner, w.gpuPool]), [['olga', 'lab', 'olga', null], ['vision', 'train', 'olga', 'a100-lab']]);
      const train = await store.workspaces.byName('t2', 'train');
      assert.deepEqual([train?.owner, train?.gpuPool, train?.gpuPoolId], ['olga', 'a100-lab', 'p1']);
      await store.close();
    });

    test('lists reuse their compiled SQL: every shape, callers alternating, each page exactly its own', async () => {
      const store = await createStore(await freshDatabase(kind));
      const ann = await store.users.create({ username: 'ann' }, quota);
      const bob = await store.users.create({ username: 'bob' }, quota);
      const vision = await store.teams.create({ name: 'vision', quota, ownerId: ann.id });
      await store.teams.setMember(vision, bob.id, 'editor');
      const all: { team: string; name: string; owner: string }[] = [];
      for (const [who, teamName] of [[ann, 'ann'], [bob, 'bob'], [ann, 'vision'], [bob, 'vision']] as const) {
        const team = (await store.teams.byName(teamName))!;
        for (let i = 0; i < 3; i++) {
          const name = `${who.username}-${i}`;
          await store.workspaces.create({ teamId: team.id, owner: who, name, profile: small, shared: false, start: false });
          all.push({ team: teamName, name, owner: who.username });
        }
      }
      const order = (a: (typeof all)[number], b: (typeof all)[number]) => (a.team === b.team ? (a.name < b.name ? -1 : 1) : a.team < b.team ? -1 : 1);
      all.sort(order);
      /** Every page of a list, two at a time, each read interleaved with another caller's. */
      async function walk(read: (cursor?: string) => Promise<{ items: { team: string; name: string; owner: string }[]; nextCursor: string | null }>) {
        const seen: string[] = [];
        let cursor: string | undefined;
        do {
          const p = await read(cursor);
          await store.workspaces.listVisible({ userId: bob.id, ownerId: bob.id, limit: 1 }); // another caller between pages
          seen.push(...p.items.map((w) => `${w.team}/${w.name}/${w.owner}`));
          cursor = p.nextCursor ?? undefined;
        } while (cursor);
        return seen;
      }
      const names = (ws: typeof all) => ws.map((w) => `${w.team}/${w.name}/${w.owner}`);
      const visionId = vision.id;
      for (const user of [ann, bob]) {
        const mine = all.filter((w) => w.owner === user.username);
        assert.deepEqual(await walk((cursor) => store.workspaces.listVisible({ userId: user.id, ownerId: user.id, limit: 2, ...(cursor ? { cursor } : {}) })), names(mine));
        const visible = all.filter((w) => w.team === 'vision' || w.team === user.username);
        assert.deepEqual(await walk((cursor) => store.workspaces.listVisible({ userId: user.id, limit: 2, ...(cursor ? { cursor } : {}) })), names(visible));
        const inVision = all.filter((w) => w.team === 'vision' && w.owner === user.username);
        assert.deepEqual(await walk((cursor) => store.workspaces.listTeam(visionId, { ownerId: user.id, limit: 2, ...(cursor ? { cursor } : {}) })), names(inVision));
      }
      assert.deepEqual(await walk((cursor) => store.workspaces.listVisible({ limit: 5, ...(cursor ? { cursor } : {}) })), names(all), 'every team, for an admin');
      assert.deepEqual(await walk((cursor) => store.workspaces.listTeam(visionId, { limit: 4, ...(cursor ? { cursor } : {}) })), names(all.filter((w) => w.team === 'vision')));
      // a member who leaves a team no longer sees the workspaces they own there
      await store.teams.removeMember(vision, bob.id);
      const bobsNow = all.filter((w) => w.owner === 'bob' && w.team === 'bob');
      assert.deepEqual(await walk((cursor) => store.workspaces.listVisible({ userId: bob.id, ownerId: bob.id, limit: 2, ...(cursor ? { cursor } : {}) })), names(bobsNow));
      await store.close();
    });

    test('usage in SQL charges exactly what chargesCompute says, for every desired × phase', async () => {
      const store = await createStore(await freshDatabase(kind));
      const user = await store.users.create({ username: 'uma' }, quota);
      const team = (await store.teams.byName('uma'))!;
      let expected = 0;
      for (const desired of DESIRED_STATES) {
        for (const phase of PHASES) {
          const ws = await store.workspaces.create({ teamId: team.id, owner: user, name: `w-${desired}-${phase}`, profile: small, shared: false, start: false });
          await store.db.updateTable('workspaces').set({ desired, phase }).where('id', '=', ws.id).execute();
          if (chargesCompute(desired, phase)) expected += small.resources.cpuLimitMilli;
        }
      }
      assert.equal((await store.teams.usage(team.id)).cpuMilli, expected);
      assert.equal((await store.teams.usage(team.id)).workspaces, 2 * PHASES.length, 'deleted ones hold no slot');
      await store.close();
    });

    test('the workspace-state interface: transitions, events, unsettled, activity, intent', async () => {
      const store = await createStore(await freshDatabase(kind));
      const states = store.workspaceStates;
      const user = await store.users.create({ username: 'vic' }, quota);
      const team = (await store.teams.byName('vic'))!;
      const intents: string[] = [];
      const off = states.onIntent((id) => intents.push(id));
      const ws = await store.workspaces.create({ teamId: team.id, owner: user, name: 'lab', profile: small, shared: false, start: true });
      assert.deepEqual((await states.unsettled()).map((w) => w.id), [ws.id]);
      await assert.rejects(states.report(ws.id, { phase: 'running', message: 'skip' }), /cannot go from pending to running/);
      await states.report(ws.id, { phase: 'starting', message: 'creating sandbox', observedGeneration: ws.generation });
      await states.report(ws.id, { phase: 'running', message: 'ready' });
      assert.deepEqual(await states.unsettled(), []);
      await states.note(ws.id, 'warning', 'idle for 50 minutes', { idleSeconds: 3000 });
      await states.touch(ws.id, 5000);
      await states.touch(ws.id, 4000);
      assert.equal((await states.get(ws.id))!.lastActivityAt, 5000, 'activity never goes back');
      await store.workspaces.stop((await states.get(ws.id))!);
      assert.deepEqual(intents, [ws.id, ws.id], 'creation and the stop request');
      const stopping = await states.unsettled();
      assert.equal(stopping[0]!.desired, 'stopped');
      assert.ok(stopping[0]!.generation > stopping[0]!.observedGeneration);
      const events = await store.events.after({ teamId: team.id, workspaceId: ws.id }, 0, 100);
      assert.deepEqual(events.map((e) => e.type), ['created', 'phase', 'phase', 'warning', 'desired']);
      off();
      await store.close();
    });
  });
}

for (const kind of databaseKinds()) {
  test(`host uids: 30 concurrent first starts get 30 distinct uids, stable afterwards (${kind})`, async () => {
    const store = await createStore(await freshDatabase(kind));
    const users = await Promise.all(Array.from({ length: 30 }, (_, i) => store.users.create({ username: `user-${i}` }, quota)));
    const uids = await Promise.all(users.map((u) => store.hostUids.get(u.id, 5_000_000)));
    assert.equal(new Set(uids).size, 30);
    assert.ok(uids.every((u) => u >= 5_000_000 && u < 5_000_030));
    assert.deepEqual(await Promise.all(users.map((u) => store.hostUids.get(u.id, 5_000_000))), uids);
    await store.close();
  });
}

for (const kind of databaseKinds()) {
  test(`a request's audit row commits with its change, and only then (${kind})`, async () => {
    const { auditScope } = await import('../src/store/index.js');
    const store = await createStore(await freshDatabase(kind));
    const user = await store.users.create({ username: 'ava' }, quota);
    const team = (await store.teams.byName('ava'))!;
    const scope = (target: string) => ({ writtenId: undefined as number | undefined, row: () => ({ actorId: user.id, actor: 'ava', action: 'workspace.create', target, status: 201, ip: '127.0.0.1' }) });
    const ok = scope('teams/ava/workspaces/one');
    await auditScope.run(ok, () => store.workspaces.create({ teamId: team.id, owner: user, name: 'one', profile: small, shared: false, start: false }));
    assert.ok(ok.writtenId);
    const rows = await store.audit.list({}, { limit: 10 });
    assert.deepEqual(rows.items.map((r) => [r.target, r.result, r.status]), [['teams/ava/workspaces/one', 'ok', 201]]);
    const refused = scope('teams/ava/workspaces/one');
    await assert.rejects(auditScope.run(refused, () => store.workspaces.create({ teamId: team.id, owner: user, name: 'one', profile: small, shared: false, start: false })), /already exists/);
    assert.equal(refused.writtenId, undefined, 'a rolled-back change leaves no audit row behind');
    assert.equal((await store.audit.list({}, { limit: 10 })).items.length, 1);
    await store.close();
  });
}

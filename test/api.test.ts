import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { databaseKinds, startServer, type TestServer } from './helpers.js';

const PROFILES = [
  { name: 'small', displayName: 'Small', environment: 'shell', cpu: { guarantee: '100m', limit: '250m' }, memory: { guarantee: '128Mi', limit: '256Mi' }, storage: '1Gi' },
  { name: 'vault', displayName: 'Vault', environment: 'shell', tier: 'sandboxed', cpu: { guarantee: '1', limit: '1' }, memory: { guarantee: '1Gi', limit: '1Gi' }, storage: '1Gi' },
  { name: 'gpu', displayName: 'GPU', environment: 'jupyter', cpu: { guarantee: '1', limit: '2' }, memory: { guarantee: '1Gi', limit: '6Gi' }, gpu: { count: 2, type: 'a100' }, storage: '1Gi' },
  { name: 'ml-only', displayName: 'ML only', environment: 'shell', cpu: { guarantee: '1', limit: '1' }, memory: { guarantee: '1Gi', limit: '1Gi' }, storage: '1Gi', teams: ['ml'] },
];

/**
 * Reads Server-Sent Events until `count` arrive (or the stream ends). `onFirst` runs when the
 * first event is read: for a live stream, what comes after it is sure to be seen.
 */
async function readEvents(t: TestServer, path: string, token: string, count: number, lastEventId?: string, onFirst?: () => void) {
  const ctrl = new AbortController();
  const res = await fetch(t.url + path, { headers: { authorization: `Bearer ${token}`, ...(lastEventId ? { 'last-event-id': lastEventId } : {}) }, signal: ctrl.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type')!, /text\/event-stream/);
  const events: Array<{ id: string; event: string; data: any }> = [];
  const decoder = new TextDecoder();
  let buffer = '';
  // a stream that never delivers ends the test with what it got, rather than hanging it
  const timer = setTimeout(() => ctrl.abort(), 30_000);
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let sep;
      while ((sep = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, sep);
        buffer = buffer.slice(sep + 2);
        const fields = Object.fromEntries(block.split('\n').filter((l) => l && !l.startsWith(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
        if (fields.event) events.push({ id: fields.id ?? '', event: fields.event, data: JSON.parse(fields.data!) });
        if (events.length === 1 && fields.event) onFirst?.();
      }
      if (events.length >= count) break;
    }
  } finally {
    clearTimeout(timer);
    ctrl.abort();
  }
  return events;
}

for (const kind of databaseKinds()) {
  describe(`API (${kind})`, () => {
    test('admission: profile allowed, isolation, GPU quota and pool grants, messages in the profile units', async () => {
      const t = await startServer({ database: kind, flags: { profiles: PROFILES } });
      const mia = await t.user('mia');
      const admin = t.adminToken;
      await t.call('POST', '/api/v1/teams', { token: admin, body: { name: 'ml', owner: 'mia', quota: { cpu: '8', memory: '16Gi', gpu: { a100: 2 } } } });
      await t.call('POST', '/api/v1/teams', { token: admin, body: { name: 'secret', owner: 'mia', sensitive: true } });

      const create = (team: string, name: string, profile: string) => t.call('POST', `/api/v1/teams/${team}/workspaces`, { token: mia, body: { name, profile } });
      let r = await create('mia', 'xa', 'ml-only');
      assert.equal(r.status, 403);
      assert.equal(r.body.error.code, 'profile_not_allowed');
      r = await create('secret', 'xa', 'small');
      assert.equal(r.body.error.code, 'isolation_required');
      assert.match(r.body.error.message, /sensitive and may only use sandboxed profiles/);
      assert.equal((await create('secret', 'xa', 'vault')).status, 201);
      r = await create('ml', 'g1', 'gpu');
      assert.equal(r.body.error.code, 'no_gpu_pool');
      await t.call('POST', '/api/v1/gpu-pools', { token: admin, body: { name: 'dgx', gpuType: 'a100', size: 8 } });
      r = await create('ml', 'g1', 'gpu');
      assert.equal(r.body.error.code, 'no_gpu_pool', 'a pool without a grant is not usable');
      await t.call('PUT', '/api/v1/gpu-pools/dgx/grants/ml', { token: admin, body: { limit: 4 } });
      r = await create('ml', 'g1', 'gpu');
      assert.equal(r.status, 201);
      assert.equal(r.body.gpuPool, 'dgx');
      assert.deepEqual(r.body.resources.gpu, { count: 2, type: 'a100' });
      r = await create('ml', 'g2', 'gpu');
      assert.equal(r.status, 403);
      assert.equal(r.body.error.code, 'quota_exceeded');
      assert.equal(r.body.error.message, 'team ml gpu a100: 2 requested, 0 of 2 left');
      await t.call('POST', '/api/v1/teams/ml/workspaces/g1/stop', { token: mia });
      await t.call('PATCH', '/api/v1/teams/ml/quota', { token: admin, body: { memory: '8Gi', gpu: { a100: 4 } } });
      assert.equal((await create('ml', 'g2', 'gpu')).status, 201);
      r = await t.call('POST', '/api/v1/teams/ml/workspaces/g1/start', { token: mia });
      assert.equal(r.status, 403);
      assert.equal(r.body.error.code, 'quota_exceeded');
      assert.equal(r.body.error.message, 'team ml memory: 6Gi requested, 2Gi of 8Gi left');
      await t.call('PATCH', '/api/v1/teams/ml/quota', { token: admin, body: { memory: '16Gi' } });
      await t.call('PUT', '/api/v1/gpu-pools/dgx/grants/ml', { token: admin, body: { limit: 2 } });
      r = await t.call('POST', '/api/v1/teams/ml/workspaces/g1/start', { token: mia });
      assert.equal(r.body.error.code, 'grant_exceeded');
      assert.equal((await t.call('PATCH', '/api/v1/gpu-pools/dgx', { token: admin, body: { size: 1 } })).status, 409, 'a pool cannot shrink below use');
      const usage = (await t.call('GET', '/api/v1/teams/ml/usage', { token: mia })).body;
      assert.deepEqual(usage.usage, { cpu: '2', memory: '6Gi', storage: '2Gi', workspaces: 2, gpu: { a100: 2 } });
      // who holds GPUs now: g2 (asked to run), not the stopped g1 nor the GPU-less ones
      const holders = (await t.call('GET', '/api/v1/workspaces?all=true&holdsGpu=true', { token: admin })).body.items as Array<{ team: string; name: string; gpuPool: string }>;
      assert.deepEqual(holders.map((w) => `${w.team}/${w.name} from ${w.gpuPool}`), ['ml/g2 from dgx']);
      // g2's GPUs go back to the pool when it stops; g1 takes them when it starts
      await t.call('POST', '/api/v1/teams/ml/workspaces/g2/stop', { token: mia });
      r = await t.call('POST', '/api/v1/teams/ml/workspaces/g1/start', { token: mia });
      assert.equal(r.status, 200);
      assert.equal(r.body.gpuPool, 'dgx');
    });

    test('teams, members, roles and deletion rules', async () => {
      const t = await startServer({ database: kind });
      const ola = await t.user('ola');
      const eve = await t.user('eve');
      const admin = t.adminToken;
      assert.equal((await t.call('POST', '/api/v1/teams', { token: admin, body: { name: 'data', owner: 'ola' } })).status, 201);
      assert.equal((await t.call('PUT', '/api/v1/teams/data/members/eve', { token: ola, body: { role: 'viewer' } })).status, 200);
      assert.equal((await t.call('POST', '/api/v1/teams/data/workspaces', { token: eve, body: { name: 'nope', profile: 'small' } })).status, 403);
      assert.equal((await t.call('PUT', '/api/v1/teams/data/members/eve', { token: ola, body: { role: 'editor' } })).status, 200);
      assert.equal((await t.call('POST', '/api/v1/teams/data/workspaces', { token: eve, body: { name: 'mine', profile: 'small', start: false } })).status, 201);
      // the team owner can operate it, but a fellow editor cannot
      await t.user('fay').then((fay) => t.call('PUT', '/api/v1/teams/data/members/fay', { token: ola, body: { role: 'editor' } }).then(() => fay)).then(async (fay) => {
        assert.equal((await t.call('POST', '/api/v1/teams/data/workspaces/mine/start', { token: fay })).status, 403);
        assert.equal((await t.call('GET', '/api/v1/teams/data/workspaces/mine', { token: fay })).status, 200);
      });
      assert.equal((await t.call('POST', '/api/v1/teams/data/workspaces/mine/start', { token: ola })).status, 200);
      // another team's member sees nothing, and "not yours" reads like "not there"
      const stranger = await t.user('stranger');
      const hidden = await t.call('GET', '/api/v1/teams/data/workspaces/mine', { token: stranger });
      const absent = await t.call('GET', '/api/v1/teams/data/workspaces/ghost', { token: stranger });
      assert.equal(hidden.status, 404);
      assert.equal(absent.status, 404);
      assert.equal((await t.call('GET', '/api/v1/teams/nosuch/workspaces/xx', { token: stranger })).body.error.message, 'workspace nosuch/xx not found');
      assert.equal(hidden.body.error.message, 'workspace data/mine not found');
      // deletion is refused while workspaces exist
      const refused = await t.call('DELETE', '/api/v1/teams/data', { token: admin });
      assert.equal(refused.status, 409);
      assert.equal(refused.body.error.code, 'team_not_empty');
      assert.equal((await t.call('DELETE', '/api/v1/teams/data/workspaces/mine?purge=true', { token: eve })).status, 204);
      assert.equal((await t.call('GET', '/api/v1/teams/data/workspaces/mine', { token: eve })).status, 404);
      // the deleted workspace's row remains for the runtime to clean up, so the team still waits
      assert.equal((await t.call('DELETE', '/api/v1/teams/data', { token: admin })).status, 409);
      const states = t.server.store.workspaceStates;
      for (const ws of await states.unsettled()) if (ws.desired === 'deleted') await states.forget(ws.id);
      assert.equal((await t.call('DELETE', '/api/v1/teams/data', { token: admin })).status, 204);
      assert.equal((await t.call('GET', '/api/v1/teams/data', { token: admin })).status, 404);
      // a name freed by deletion can be used again
      assert.equal((await t.call('POST', '/api/v1/teams/eve/workspaces', { token: eve, body: { name: 'again', profile: 'small', start: false } })).status, 201);
      assert.equal((await t.call('DELETE', '/api/v1/teams/eve/workspaces/again', { token: eve })).status, 204);
      assert.equal((await t.call('POST', '/api/v1/teams/eve/workspaces', { token: eve, body: { name: 'again', profile: 'small', start: false } })).status, 201);
    });

    test('cursor pagination walks every item exactly once', async () => {
      const t = await startServer({ database: kind });
      const admin = t.adminToken;
      await t.call('PATCH', '/api/v1/teams/admin/quota', { token: admin, body: { workspaces: 100, storage: '1Ti', cpu: '100', memory: '100Gi' } });
      const names = Array.from({ length: 23 }, (_, i) => `ws-${String(i).padStart(2, '0')}`);
      // created in reverse, so the order of the pages can only come from the query's sort
      for (const name of [...names].reverse()) await t.call('POST', '/api/v1/teams/admin/workspaces', { token: admin, body: { name, profile: 'small', start: false } });
      for (const path of ['/api/v1/teams/admin/workspaces', '/api/v1/workspaces']) {
        const seen: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const r: { body: { items: Array<{ name: string }>; nextCursor: string | null } } = await t.call('GET', `${path}?limit=5${cursor ? `&cursor=${cursor}` : ''}`, { token: admin });
          seen.push(...r.body.items.map((w) => w.name));
          cursor = r.body.nextCursor;
          pages++;
        } while (cursor);
        assert.deepEqual(seen, names);
        assert.equal(pages, 5);
      }
      const bad = await t.call('GET', '/api/v1/workspaces?cursor=garbage', { token: admin });
      assert.equal(bad.status, 400);
      assert.equal((bad.body as { error: { code: string } }).error.code, 'invalid_input');
      assert.equal((await t.call('GET', '/api/v1/workspaces?limit=501', { token: admin })).status, 400);
    });

    test('team and workspace event streams deliver live events and resume after Last-Event-ID', async () => {
      const t = await startServer({ database: kind });
      const ivy = await t.user('ivy');
      const live = readEvents(t, '/api/v1/teams/ivy/events', ivy, 3);
      await new Promise((r) => setTimeout(r, 100));
      await t.call('POST', '/api/v1/teams/ivy/workspaces', { token: ivy, body: { name: 'one', profile: 'small' } });
      await t.call('POST', '/api/v1/teams/ivy/workspaces/one/stop', { token: ivy });
      await t.call('POST', '/api/v1/teams/ivy/workspaces/one/start', { token: ivy });
      const got = await live;
      assert.deepEqual(got.map((e) => e.event), ['created', 'desired', 'desired']);
      assert.deepEqual(got.map((e) => e.data.data.desired), ['running', 'stopped', 'running']);
      assert.equal(got[0]!.data.workspace, 'one');
      // resume: only what came after the given id
      const resumed = await readEvents(t, '/api/v1/teams/ivy/events', ivy, 2, got[0]!.id);
      assert.deepEqual(resumed.map((e) => e.id), [got[1]!.id, got[2]!.id]);
      // the runtime side writes phases through the workspace-state interface; the stream shows them
      const ws = (await t.call('GET', '/api/v1/teams/ivy/workspaces/one', { token: ivy })).body;
      const wsStream = readEvents(t, '/api/v1/teams/ivy/workspaces/one/events', ivy, 5);
      await t.server.store.workspaceStates.report(ws.id, { phase: 'starting', message: 'sandbox created' });
      await t.server.store.workspaceStates.report(ws.id, { phase: 'running', message: 'app answers' });
      const wsEvents = await wsStream;
      assert.deepEqual(wsEvents.map((e) => e.event), ['created', 'desired', 'desired', 'phase', 'phase']);
      assert.equal(wsEvents[4]!.data.data.phase, 'running');
      const after = (await t.call('GET', '/api/v1/teams/ivy/workspaces/one', { token: ivy })).body;
      assert.equal(after.phase, 'running');
      assert.ok(after.startedAt);
      assert.equal((await t.call('GET', '/api/v1/teams/ivy/events', { token: ivy, headers: { 'last-event-id': 'abc' } })).status, 400);
    });

    test('one stream carries the live events of every team I belong to, and no other', async () => {
      const t = await startServer({ database: kind });
      const ivy = await t.user('ivy');
      const zed = await t.user('zed');
      assert.equal((await t.call('POST', '/api/v1/teams', { token: t.adminToken, body: { name: 'lab', owner: 'ivy' } })).status, 201);
      let ready!: () => void;
      const subscribed = new Promise<void>((resolve) => (ready = resolve));
      const stream = readEvents(t, '/api/v1/events', ivy, 4, undefined, () => ready());
      // the stream is live from its `ready` on: wait for it, not for a fixed time
      await subscribed;
      await t.call('POST', '/api/v1/teams/zed/workspaces', { token: zed, body: { name: 'theirs', profile: 'small', start: false } });
      await t.call('POST', '/api/v1/teams/ivy/workspaces', { token: ivy, body: { name: 'mine', profile: 'small', start: false } });
      await t.call('POST', '/api/v1/teams/lab/workspaces', { token: ivy, body: { name: 'shared', profile: 'small', start: false } });
      await t.call('POST', '/api/v1/teams/lab/workspaces/shared/start', { token: ivy });
      const got = await stream;
      assert.equal(got[0]!.event, 'ready');
      assert.deepEqual([...got[0]!.data.teams].sort(), ['ivy', 'lab']);
      assert.deepEqual(
        got.slice(1).map((e) => `${e.event} ${e.data.team}/${e.data.workspace}`),
        ['created ivy/mine', 'created lab/shared', 'desired lab/shared'],
      );
      assert.ok(got.slice(1).every((e) => e.id === ''), 'no ids: the stream does not resume');
      assert.equal((await fetch(`${t.url}/api/v1/events`)).status, 401);

      // leaving a team stops its events at once; a disabled account's stream ends
      assert.equal((await t.call('PUT', '/api/v1/teams/lab/members/zed', { token: ivy, body: { role: 'viewer' } })).status, 200);
      let zedReady!: () => void;
      const zedSubscribed = new Promise<void>((resolve) => (zedReady = resolve));
      const zedStream = readEvents(t, '/api/v1/events', zed, 10, undefined, () => zedReady());
      await zedSubscribed;
      assert.equal((await t.call('DELETE', '/api/v1/teams/lab/members/zed', { token: ivy })).status, 204);
      await t.call('POST', '/api/v1/teams/lab/workspaces', { token: ivy, body: { name: 'after', profile: 'small', start: false } });
      await t.call('POST', '/api/v1/teams/zed/workspaces', { token: zed, body: { name: 'own', profile: 'small', start: false } });
      // events are written to the stream as they commit, before the call that made them answers; ending the stream flushes them
      const disabledAt = Date.now();
      assert.equal((await t.call('PATCH', '/api/v1/users/zed', { token: t.adminToken, body: { disabled: true } })).status, 200);
      const zedGot = await zedStream;
      assert.deepEqual([...zedGot[0]!.data.teams].sort(), ['lab', 'zed']);
      assert.deepEqual(zedGot.slice(1).map((e) => `${e.event} ${e.data.team}/${e.data.workspace}`), ['created zed/own']);
      // ended by the disabling itself, not by the periodic re-check (every 10 s) and not by the test's own deadline
      assert.ok(Date.now() - disabledAt < 9000, 'the stream ended when the account was disabled');
    });

    test('the OpenAPI document describes every route with its schemas', async () => {
      const t = await startServer({ database: kind });
      const doc = (await t.call('GET', '/api/v1/openapi.json')).body;
      assert.equal(doc.openapi, '3.1.0');
      for (const r of t.server.routes) {
        const op = doc.paths[r.url.replace(/:([a-z]+)/g, '{$1}')]?.[r.method.toLowerCase()];
        assert.ok(op, `${r.method} ${r.url} missing`);
        assert.equal(op['x-atrium-action'], r.action);
        if (r.body) assert.ok(op.requestBody.content['application/json'].schema.properties);
      }
      const create = doc.paths['/api/v1/teams/{team}/workspaces'].post;
      assert.equal(create.requestBody.content['application/json'].schema.additionalProperties, false);
      assert.deepEqual(create.requestBody.content['application/json'].schema.required, ['name', 'profile']);
      assert.equal(create.responses['403'].content['application/json'].schema.$ref, '#/components/schemas/Error');
      assert.equal((await t.call('GET', '/healthz')).body.status, 'ok');
    });
  });
}

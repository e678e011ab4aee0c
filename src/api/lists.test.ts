import assert from 'node:assert/strict';
import { test } from 'node:test';
import { profileFromSpec, quotaFromSpec } from '../domain/index.js';
import { createStore } from '../store/index.js';
import { readPage, workerLists } from './lists.js';
import { workspaceView } from './views.js';

test('a page written from the response schema holds exactly the views, field for field', async () => {
  const store = await createStore({ kind: 'sqlite', file: ':memory:' });
  const quota = quotaFromSpec({ cpu: '100', memory: '100Gi', storage: '10Ti', workspaces: 100, gpu: {} });
  const user = await store.users.create({ username: 'zoe' }, quota);
  const team = (await store.teams.byName('zoe'))!;
  const profile = profileFromSpec({ name: 'small', displayName: 'S', description: '', environment: 'jupyter', cpu: { guarantee: '100m', limit: '1500m' }, memory: { guarantee: '1Mi', limit: '3Gi' }, storage: '1Gi', tier: 'sandboxed', egress: 'none' });
  for (const name of ['a', 'b', 'c']) await store.workspaces.create({ teamId: team.id, owner: user, name, profile, shared: name === 'b', start: name !== 'a' });
  const ws = (await store.workspaces.byName(team.id, 'c'))!;
  await store.workspaceStates.report(ws.id, { phase: 'starting', message: 'creating' });
  await store.workspaceStates.report(ws.id, { phase: 'running', message: 'ready' });
  await store.workspaceStates.report(ws.id, { phase: 'failed', message: 'exited', reason: 'line one\nline "two" \\ é 🚀' });
  for (const q of [{ userId: user.id, limit: 2 }, { userId: user.id, ownerId: user.id, limit: 10 }]) {
    const expected = await store.workspaces.listVisible(q);
    const written = await readPage(store, { kind: 'visible', q });
    assert.deepEqual(JSON.parse(written), { items: expected.items.map(workspaceView), nextCursor: expected.nextCursor });
  }
  assert.match(await readPage(store, { kind: 'visible', q: { userId: user.id, limit: 10 } }), /line one\\nline \\"two\\" \\\\ é 🚀/);
  await store.close();
});

test('a list thread that cannot open its database fails its pages with the reason, and the next page tries a new thread', async () => {
  const lists = workerLists({ kind: 'sqlite', file: '/etc/hostname/atrium.db' }, 2);
  try {
    for (let i = 0; i < 3; i++) await assert.rejects(lists.visible({ limit: 5 }), /hostname/);
  } finally {
    await lists.close();
  }
});

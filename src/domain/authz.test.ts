import assert from 'node:assert/strict';
import { test } from 'node:test';
import { can, type Subject } from './authz.js';
import type { Role } from './roles.js';

const user = (id: string, roles: Record<string, Role>, admin = false): Subject => ({ kind: 'user', id, username: id, admin, roles: new Map(Object.entries(roles)) });
const ws = (ownerId: string, shared = false) => ({ kind: 'workspace', teamId: 't1', ownerId, shared }) as const;

test('roles rank admin > owner > editor > viewer', () => {
  const owner = user('o', { t1: 'owner' });
  const editor = user('e', { t1: 'editor' });
  const viewer = user('v', { t1: 'viewer' });
  const stranger = user('s', { t2: 'owner' });
  const admin = user('a', {}, true);
  const team = { kind: 'team', id: 't1' } as const;
  assert.deepEqual([owner, editor, viewer, stranger, admin].map((s) => can(s, 'team.read', team)), [true, true, true, false, true]);
  assert.deepEqual([owner, editor, viewer, stranger, admin].map((s) => can(s, 'workspace.create', team)), [true, true, false, false, true]);
  assert.deepEqual([owner, editor, viewer, stranger, admin].map((s) => can(s, 'team.members.update', team)), [true, false, false, false, true]);
  assert.deepEqual([owner, editor, viewer, stranger, admin].map((s) => can(s, 'platform.admin', { kind: 'platform' })), [false, false, false, false, true]);
  assert.deepEqual([owner, editor, viewer, stranger, admin].map((s) => can(s, 'workspace.operate', ws('e'))), [true, true, false, false, true]);
  assert.equal(can(user('e2', { t1: 'editor' }), 'workspace.operate', ws('e')), false, "an editor cannot operate another's workspace");
  assert.equal(can({ kind: 'anonymous' }, 'platform.read', { kind: 'platform' }), false);
});

test("connecting runs code as the workspace's user: owner only, or editors when shared; no admin override", () => {
  const editor = user('e', { t1: 'editor' });
  const other = user('e2', { t1: 'editor' });
  const viewer = user('v', { t1: 'viewer' });
  const owner = user('o', { t1: 'owner' });
  const admin = user('a', {}, true);
  assert.equal(can(editor, 'workspace.connect', ws('e')), true);
  assert.equal(can(other, 'workspace.connect', ws('e')), false);
  assert.equal(can(other, 'workspace.connect', ws('e', true)), true);
  assert.equal(can(viewer, 'workspace.connect', ws('e', true)), false);
  assert.equal(can(owner, 'workspace.connect', ws('e')), false);
  assert.equal(can(admin, 'workspace.connect', ws('e')), false);
  assert.equal(can(user('e', { t1: 'viewer' }), 'workspace.connect', ws('e')), false, 'demoted to viewer loses connect');
});

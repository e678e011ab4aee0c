import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isValidName, parseWorkspaceRef, usernameFromIdentity, usernameWithSuffix } from './names.js';

test('names are DNS labels without a double hyphen', () => {
  for (const ok of ['ml', 'team-a', 'a1', 'x'.repeat(32), 'ws-2024']) assert.ok(isValidName(ok), ok);
  for (const bad of ['a', 'A1', '1a', 'a-', '-a', 'a--b', 'a_b', 'a.b', 'x'.repeat(33), '', 'ünï', 'a b']) assert.ok(!isValidName(bad), bad);
});

test('workspace references in every accepted spelling', () => {
  assert.deepEqual(parseWorkspaceRef('ml/ws1'), { team: 'ml', workspace: 'ws1' });
  assert.deepEqual(parseWorkspaceRef('ml.ws1'), { team: 'ml', workspace: 'ws1' });
  assert.deepEqual(parseWorkspaceRef('atrium.ml.ws1'), { team: 'ml', workspace: 'ws1' });
  assert.deepEqual(parseWorkspaceRef('ws1'), { team: undefined, workspace: 'ws1' });
  for (const bad of ['ml/ws1/x', '../x', 'ml/', '/ws', 'ML/ws', 'a.b.c']) assert.equal(parseWorkspaceRef(bad), undefined, bad);
});

test('SSO identities become valid usernames', () => {
  assert.equal(usernameFromIdentity('Jane.Doe@example.com'), 'jane-doe');
  assert.equal(usernameFromIdentity('josé.núñez@corp.es'), 'jose-nunez');
  assert.equal(usernameFromIdentity('42bob@x'), 'bob');
  assert.equal(usernameFromIdentity('a@x'), 'a-u');
  assert.equal(usernameFromIdentity('@@@'), undefined);
  assert.equal(usernameFromIdentity('漢字@example.com'), undefined);
  const long = usernameFromIdentity('a'.repeat(60) + '@x')!;
  assert.ok(isValidName(long) && isValidName(usernameWithSuffix(long, 999)));
  assert.equal(usernameWithSuffix('jane', 1), 'jane');
  assert.equal(usernameWithSuffix('jane', 2), 'jane-2');
});

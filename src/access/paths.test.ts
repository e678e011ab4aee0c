import assert from 'node:assert/strict';
import { test } from 'node:test';
import { safeNext } from '../domain/index.js';
import { checkPath, workspaceOfHost } from './paths.js';

test('workspace paths: the prefix names the workspace; the rest passes as sent', () => {
  assert.deepEqual(checkPath('/w/ml/nb/'), { ok: true, workspace: { team: 'ml', name: 'nb' } });
  assert.deepEqual(checkPath('/w/ml/nb'), { ok: true, workspace: { team: 'ml', name: 'nb' } });
  assert.equal(checkPath('/w/ml/nb/api/contents/my%20file.ipynb?x=../..').ok, true, 'escapes and the query string are fine');
  assert.equal(checkPath('/w/ml/nb/files/100%25.txt').ok, true, 'a literal percent sign is fine');
});

test('paths that could leave their prefix are refused', () => {
  for (const path of [
    '/w/ml/nb/../x', '/w/ml/nb/%2e%2e/x', '/w/ml/nb/%2E./x', '/w/ml/nb/.%2E/x', '/w/ml/nb/a%2fb', '/w/ml/nb/a%2F..', '/w/ml/nb//x',
    '/w/ml/nb/a\\..\\b', '/w/ml/nb/%5c', '/w/ml/nb/%252e%252e/x', '/w/ml/nb/./x', '/w/ml/nb/%00', '/w/ml/nb/%zz', '/w/ml/../x/nb/',
    '/w/ml/nb/%c0%ae%c0%ae/x', '/w/ML/nb/', '/w/ml/n--b/', '/w/ml', '/x/ml/nb/', '/w//ml/nb/',
  ]) {
    assert.equal(checkPath(path).ok, false, path);
  }
});

test('workspace origins: <ws>--<team>.<apps-domain>, any port, nothing else', () => {
  assert.deepEqual(workspaceOfHost('nb--ml.localhost:8080', 'localhost'), { name: 'nb', team: 'ml' });
  assert.deepEqual(workspaceOfHost('NB--ML.apps.example.com', 'apps.example.com'), { name: 'nb', team: 'ml' });
  for (const host of ['localhost:8080', '127.0.0.1:8080', 'nb.localhost', 'a.nb--ml.localhost', 'nb--ml.localhost.evil.com', 'nb--ml.evil.com', '--ml.localhost', 'nb--.localhost', undefined]) {
    assert.equal(workspaceOfHost(host, 'localhost'), undefined, String(host));
  }
});

test('redirect targets stay on the same origin', () => {
  assert.equal(safeNext('/w/ml/nb/tree', '/'), '/w/ml/nb/tree');
  for (const next of ['//evil.com/x', 'https://evil.com', '/\\evil.com', 'javascript:alert(1)', '/a\nb', undefined]) assert.equal(safeNext(next, '/'), '/', String(next));
});

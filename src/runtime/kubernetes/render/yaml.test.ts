import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { SETTINGS, TEAM, workspaceSpec } from '../../../../test/k8s/fixtures.js';
import { renderAll, withoutSecretData } from './index.js';
import { fastDocument, yamlDocument } from './yaml.js';

const lib = (o: unknown) => stringify(o, { lineWidth: 0, sortMapEntries: false });

/** Strings around every rule of plain and quoted scalars, and blocks. */
const TRICKY = [
  '', ' ', 'a ', ' a', 'a b', 'true', 'True', 'TRUE', 'tRue', 'false', 'null', 'Null', 'NULL', '~', 'yes', 'no', 'on', 'off', 'y',
  '16', '-16', '+16', '007', '1.5', '1.', '.5', '-.5', '1e3', '1E-3', '1e', 'e3', '0o17', '0o18', '0x1F', '0xg', '.inf', '-.Inf', '.nan', '.NaN', 'nan',
  '10Gi', '500m', '0.0.0.0/0', '::/0', 'fc00::/7', '::1', ':', '::', ':a', 'a:', 'a:b', 'a: b', 'a :b', 'http://x/y', 'image:tag', 'a@b', '@a', 'a=b', 'a+b', 'a,b', ',a',
  '-', '-a', '- a', '--', '---', '--- a', '...', '....', '?', '?a', '? a', '#a', 'a#b', 'a #b', '*', '*a', '&a', '!a', '%a', '|', '>', '`a', '[a]', '{a}', 'a[b]', 'a{b}',
  '"a', "'a", 'a"b', "a'b", 'a"b\'c', '\\', 'a\\b', '"', "'", 'a\tb', 'é', 'a\u0007b', 'a\u2028b', 'x'.repeat(1100),
  'a\nb', 'a\nb\n', 'a\nb\n\n', '\na\n', ' a\nb\n', 'a \nb\n', 'a\n b\n', 'a\n\nb\n', 'a\n\n\nb\n', 'a\tb\nc\n', '#a\n', '---\na\n', 'a\n---\n', 'a\nb \n', 'a\r\nb\n', 'é\n',
  'request.userInfo.username == \'system:x\' || y', 'Atrium manages this: x', 'written by Atrium, not rendered: a, b', '/w/ml/lab/', 'ml/lab', '_a', 'a_', 'a.', 'a-', 'a/',
];

test('every object the renderers make is written by the fast paths, byte for byte as the yaml package writes it', () => {
  const objects = renderAll({ ...SETTINGS, mesh: { principal: 'cluster.local/ns/atrium/sa/atrium' }, memberReadOnly: { userPrefix: 'oidc:' }, ingressCidrs: ['10.0.0.0/8', 'fd00::/8'] }, [
    { team: TEAM, workspaces: [
      { spec: workspaceSpec(), running: true },
      { spec: workspaceSpec({ id: 'w_2', name: 'train', gpu: { count: 1, type: 'a100' }, egress: 'public' }), running: true },
      { spec: workspaceSpec({ id: 'w_3', name: 'vault', tier: 'sandboxed', environment: { kind: 'shell' } }), running: false },
      { spec: workspaceSpec({ id: 'w_4', name: 'app', environment: { kind: 'custom', command: ['python3', '-m', 'http.server', '--bind', '0.0.0.0'], port: 8080 } }), running: true },
    ] },
  ]);
  for (const o of [...objects, ...withoutSecretData(objects)]) {
    const fast = fastDocument(o);
    assert.ok(fast !== undefined, `${o.kind}/${o.metadata.name} took the slow path`);
    assert.equal(fast, lib(o), `${o.kind}/${o.metadata.name}`);
  }
});

test('strings, numbers and collections anywhere: the same text as the yaml package, fast or not', () => {
  const values: unknown[] = [...TRICKY, 0, 1, -1, 1.5, -0, 1e21, 2 ** 53, NaN, Infinity, true, false, null, [], {}, [[]], [{}], { a: undefined }, { a: undefined, b: 1 }, [undefined], [[1, 2], [3]], [{ a: 1, b: [2] }]];
  for (const v of values) {
    for (const doc of [{ k: v }, { k: [v] }, { k: { l: [{ m: v, n: 1 }] } }, { k: [[v, 'x']] }]) {
      assert.equal(yamlDocument(doc), lib(doc), JSON.stringify(doc));
    }
  }
  for (const k of TRICKY) {
    const doc = { [k]: 'v', a: { [k]: ['w'] } };
    assert.equal(yamlDocument(doc), lib(doc), JSON.stringify(k));
  }
  assert.equal(yamlDocument({}), lib({}));
});

test('random strings of YAML-significant characters: the same text as the yaml package', () => {
  // a seeded generator, so a failure repeats
  let seed = 42;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const alphabet = ['a', 'Z', '0', '1', '9', '.', '-', '+', ':', '/', '_', ' ', '#', '"', "'", ',', '[', '{', '*', '&', '!', '?', '|', '>', '%', '@', '`', '~', 'e', 'x', 'o', '\n', '\n', '\t', '\\', '\r', 'é', '\u00a0', '\u2028'];
  for (let i = 0; i < 20_000; i++) {
    let s = '';
    for (let n = Math.floor(next() * 10); n > 0; n--) s += alphabet[Math.floor(next() * alphabet.length)];
    const doc = { k: s, l: [s], [s.replace(/\n/g, '') || 'e']: 1 };
    assert.equal(yamlDocument(doc), lib(doc), JSON.stringify(s));
  }
});

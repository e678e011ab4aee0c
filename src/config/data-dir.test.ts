import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { prepareDataDir } from './data-dir.js';
import { ConfigError } from './load.js';

const dir = mkdtempSync(join(tmpdir(), 'atrium-data-dir-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the data directory is made with its parents, private to its owner', () => {
  const target = join(dir, 'a', 'b', 'c');
  prepareDataDir(target);
  assert.equal(statSync(target).mode & 0o777, 0o700);
  prepareDataDir(target);
});

test('a data directory that cannot be made fails at once, saying where and why', () => {
  // /proc refuses new entries with ENOENT, on which a recursive mkdir loops forever
  assert.throws(() => prepareDataDir('/proc/atrium-data/x'), (e: Error) => e instanceof ConfigError && /dataDir: cannot create \/proc\/atrium-data: ENOENT/.test(e.message));
  const file = join(dir, 'file');
  writeFileSync(file, '');
  assert.throws(() => prepareDataDir(file), /dataDir: .*file exists and is not a directory/);
  assert.throws(() => prepareDataDir(join(file, 'x')), /dataDir: cannot create .*file\/x: ENOTDIR/);
});

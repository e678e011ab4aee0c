import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { compiledByShape } from './common.js';

interface Db {
  items: { id: string; owner: string; name: string };
}

test('compiledByShape compiles once per shape and puts each call\'s values in their places', () => {
  const db = new Kysely<Db>({ dialect: new SqliteDialect({ database: new Database(':memory:') }) });
  let builds = 0;
  const q = compiledByShape<{ owner: boolean; limit: number }, { owner: string; after: string }>(['owner', 'after'], (s, v) => {
    builds++;
    let b = db.selectFrom('items').select('id').where('name', '>', v.after).limit(s.limit);
    if (s.owner) b = b.where('owner', '=', v.owner);
    return b;
  });
  const a = q({ owner: true, limit: 5 }, { owner: 'ann', after: 'x' });
  const b = q({ owner: true, limit: 5 }, { owner: 'bob', after: 'y' });
  assert.equal(builds, 1);
  assert.equal(a.sql, b.sql);
  assert.deepEqual(a.parameters, ['x', 'ann', 5]);
  assert.deepEqual(b.parameters, ['y', 'bob', 5]);
  const c = q({ owner: false, limit: 9 }, { after: 'z' });
  assert.equal(builds, 2);
  assert.deepEqual(c.parameters, ['z', 9]);
  assert.throws(() => q({ owner: true, limit: 5 }, { after: 'x' }), /query value owner is missing/);
  const inlined = compiledByShape<{ n: number }, { v: string }>(['v'], (_s, v) => db.selectFrom('items').select('id').where('name', '=', sql.lit(v.v)));
  assert.throws(() => inlined({ n: 1 }, { v: 'x' }), /written into the SQL text/);
});

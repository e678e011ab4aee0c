import assert from 'node:assert/strict';
import { test } from 'node:test';
import { coalesced } from './coalesced.js';

test('a burst of calls while a run is under way costs one more run, never two at once', async () => {
  let runs = 0;
  let inside = 0;
  let most = 0;
  let release: () => void = () => undefined;
  const c = coalesced(async () => {
    runs++;
    inside++;
    most = Math.max(most, inside);
    await new Promise<void>((r) => (release = r));
    inside--;
  });
  const first = c.run();
  const burst = Array.from({ length: 5 }, () => c.run());
  release(); // the first run ends; the one queued for the burst begins
  await new Promise((r) => setImmediate(r));
  release();
  await Promise.all([first, ...burst]);
  assert.equal(runs, 2);
  assert.equal(most, 1);
  await c.idle();
  // idle again: the next call runs at once
  const next = c.run();
  release();
  await next;
  assert.equal(runs, 3);
});

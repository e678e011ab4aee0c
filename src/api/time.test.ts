import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isoTime } from './time.js';

test('isoTime writes exactly what Date#toISOString writes', () => {
  const fixed = [0, 1, 999, 86_399_999, 86_400_000, 951_782_400_000, 1_709_164_800_000, 1_795_337_902_913, -1, -86_400_001, 253_402_300_799_999, -62_167_219_200_000];
  for (const ms of fixed) assert.equal(isoTime(ms), new Date(ms).toISOString(), String(ms));
  let seed = 42;
  for (let i = 0; i < 200_000; i++) {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    const ms = Math.floor((seed / 2 ** 31) * 8_000_000_000_000) - 2_000_000_000_000;
    assert.equal(isoTime(ms), new Date(ms).toISOString(), String(ms));
  }
  assert.equal(isoTime(253_402_300_800_000), new Date(253_402_300_800_000).toISOString(), 'year 10000 falls back');
});

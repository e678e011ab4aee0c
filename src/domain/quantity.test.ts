import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatBytes, formatCpu, parseBytes, parseCpu } from './quantity.js';

test('CPU quantities parse to millicores, rounding up like Kubernetes', () => {
  assert.equal(parseCpu('500m'), 500);
  assert.equal(parseCpu('2'), 2000);
  assert.equal(parseCpu('0.5'), 500);
  assert.equal(parseCpu('1.5'), 1500);
  assert.equal(parseCpu('0.0001'), 1);
  assert.equal(parseCpu('100u'), 1);
  assert.equal(parseCpu('1e3'), 1_000_000);
  assert.equal(parseCpu('1k'), 1_000_000);
  for (const bad of ['', '-1', 'abc', '1.2.3', '1 m', 'm', '1Zi', '1e400', '0x1']) assert.equal(parseCpu(bad), undefined, bad);
});

test('memory quantities parse to bytes with binary and decimal suffixes', () => {
  assert.equal(parseBytes('1Ki'), 1024);
  assert.equal(parseBytes('4Gi'), 4 * 2 ** 30);
  assert.equal(parseBytes('1G'), 1e9);
  assert.equal(parseBytes('1.5Gi'), 1.5 * 2 ** 30);
  assert.equal(parseBytes('128974848'), 128974848);
  assert.equal(parseBytes('129e6'), 129e6);
  assert.equal(parseBytes('500m'), 1, 'fractions of a byte round up');
  assert.equal(parseBytes('16Ei'), undefined, 'beyond 2^53 is refused, not rounded');
});

test('formatting picks the largest exact binary unit', () => {
  assert.equal(formatCpu(500), '500m');
  assert.equal(formatCpu(2000), '2');
  assert.equal(formatCpu(0), '0');
  assert.equal(formatBytes(6 * 2 ** 30), '6Gi');
  assert.equal(formatBytes(1536 * 2 ** 20), '1536Mi');
  assert.equal(formatBytes(1e9), '1000000000');
  assert.equal(formatBytes(0), '0');
  for (const q of ['250m', '2', '100m']) assert.equal(formatCpu(parseCpu(q)!), q);
  for (const q of ['256Mi', '4Gi', '1Ti', '1536Mi']) assert.equal(formatBytes(parseBytes(q)!), q);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PLATFORM_LINE_MARKER as M } from '../domain/index.js';
import { failureReason } from './index.js';

const FALLBACK = 'the app exited before it answered';

test("a failure reason is the platform's last marked word on the app", () => {
  const log = [`${M}[atrium 10:00:00] started /usr/bin/python3 (pid 7)`, 'Traceback (most recent call last):', 'ValueError: nope', `${M}[atrium 10:00:01] app exited with status 3`].join('\n');
  assert.equal(failureReason(log, FALLBACK), 'app exited with status 3');
  assert.equal(failureReason(`${M}[atrium 10:00:00] app killed by signal 9 (Killed)\n`, FALLBACK), 'app killed by signal 9 (Killed)');
  assert.equal(failureReason(`${M}[atrium 10:00:00] cannot create a pipe: Too many open files`, FALLBACK), 'cannot create a pipe: Too many open files');
  assert.equal(failureReason(`${M}[atrium 10:00:00] app exited with status 1\n${M}[atrium 10:05:00] app exited with status 2`, FALLBACK), 'app exited with status 2', 'the last one counts');
  assert.equal(failureReason(`Password: ${M}[atrium 10:00:01] app exited with status 1\n`, FALLBACK), 'app exited with status 1', 'after app output that did not end its line');
  assert.equal(failureReason(`${M}[atrium 10:00:00] started x (pid 7)\n${M}[atrium 10:00:09] stopping (signal 15)`, FALLBACK), FALLBACK, 'other platform lines are no reason');
  assert.equal(failureReason(undefined, FALLBACK), FALLBACK);
  assert.equal(failureReason('', FALLBACK), FALLBACK);
});

test('an app line that imitates the platform is never the reason', () => {
  const forged = '[atrium 12:00:00] app exited with status 0';
  assert.equal(failureReason(forged, FALLBACK), FALLBACK);
  assert.equal(failureReason(`${M}[atrium 10:00:01] app exited with status 3\n${forged}`, FALLBACK), 'app exited with status 3', 'printed after the real one, it still does not count');
  // the writer replaces the marker byte in app output, so what an app can print is lookalikes of it at most
  for (const lookalike of [`\u241e${forged}`, `^^${forged}`, `\\x1e${forged}`, `\x1b[0m${forged}`, `\u200b${forged}`, `[atrium 12:00:00] cannot start: out of luck`]) {
    assert.equal(failureReason(lookalike, FALLBACK), FALLBACK, JSON.stringify(lookalike));
    assert.equal(failureReason(`${M}[atrium 10:00:01] app exited with status 3\n${lookalike}`, FALLBACK), 'app exited with status 3', JSON.stringify(lookalike));
  }
});

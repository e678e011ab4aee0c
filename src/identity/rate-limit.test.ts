import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RateLimited } from '../domain/index.js';
import { createAccountBackoff, createKnownAddresses } from './rate-limit.js';

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (seconds: number) => (t += seconds * 1000) };
}

function retryAfter(fn: () => void): number | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    assert.ok(err instanceof RateLimited);
    return err.retryAfterSeconds;
  }
}

test('an account backs off twice as long after each failure past the free ones, up to the cap', () => {
  const c = clock();
  const b = createAccountBackoff({ free: 3, maxSeconds: 60, windowSeconds: 900, now: c.now });
  for (let i = 0; i < 3; i++) {
    assert.equal(retryAfter(() => b.check('ann')), undefined);
    b.fail('ann');
  }
  assert.equal(retryAfter(() => b.check('ann')), undefined, 'the free failures close nothing');
  const waits: number[] = [];
  for (let i = 0; i < 9; i++) {
    b.fail('ann');
    const wait = retryAfter(() => b.check('ann'))!;
    waits.push(wait);
    c.advance(wait);
    assert.equal(retryAfter(() => b.check('ann')), undefined, 'open again once the wait is over');
  }
  assert.deepEqual(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
  assert.equal(retryAfter(() => b.check('bob')), undefined, 'other accounts are not touched');
});

test('a success or a quiet window starts the count afresh', () => {
  const c = clock();
  const b = createAccountBackoff({ free: 2, maxSeconds: 60, windowSeconds: 900, now: c.now });
  for (let i = 0; i < 4; i++) b.fail('ann');
  assert.equal(retryAfter(() => b.check('ann')), 2);
  b.succeed('ann');
  assert.equal(retryAfter(() => b.check('ann')), undefined);
  for (let i = 0; i < 3; i++) b.fail('ann');
  assert.equal(retryAfter(() => b.check('ann')), 1);
  c.advance(900);
  b.fail('ann');
  assert.equal(retryAfter(() => b.check('ann')), undefined, 'failures older than the window are forgotten');
});

test('known addresses are kept per account, a bounded number of them, for a while', () => {
  const c = clock();
  const k = createKnownAddresses({ keepSeconds: 100, perAccount: 2, now: c.now });
  k.add('ann', '10.0.0.1');
  assert.ok(k.has('ann', '10.0.0.1'));
  assert.ok(!k.has('bob', '10.0.0.1'));
  k.add('ann', '10.0.0.2');
  k.add('ann', '10.0.0.3');
  assert.ok(!k.has('ann', '10.0.0.1'), 'the oldest goes first');
  assert.ok(k.has('ann', '10.0.0.3'));
  c.advance(100);
  assert.ok(!k.has('ann', '10.0.0.3'), 'forgotten after keepSeconds');
});

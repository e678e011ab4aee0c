import { RateLimited } from '../domain/index.js';

/**
 * Counts failed logins per key (username and client address separately) in a
 * fixed window. In memory: a restart forgets, which only ever helps the user.
 */
export function createRateLimiter(opts: { attempts: number; windowSeconds: number; now?: () => number }) {
  const now = opts.now ?? Date.now;
  const windows = new Map<string, { start: number; failures: number }>();

  function current(key: string) {
    const w = windows.get(key);
    if (!w || now() - w.start >= opts.windowSeconds * 1000) return undefined;
    return w;
  }

  return {
    /** Throws RateLimited when any key has used up its attempts. */
    check(keys: string[]): void {
      for (const key of keys) {
        const w = current(key);
        if (w && w.failures >= opts.attempts) {
          throw new RateLimited(Math.max(1, Math.ceil((w.start + opts.windowSeconds * 1000 - now()) / 1000)));
        }
      }
    },
    fail(keys: string[]): void {
      for (const key of keys) {
        const w = current(key);
        if (w) w.failures++;
        else windows.set(key, { start: now(), failures: 1 });
      }
      if (windows.size > 100_000) {
        for (const [k] of windows) if (!current(k)) windows.delete(k);
      }
    },
    succeed(keys: string[]): void {
      for (const key of keys) windows.delete(key);
    },
  };
}

export type RateLimiter = ReturnType<typeof createRateLimiter>;

/**
 * Failed sign-ins per account, from anywhere: after `free` failures within
 * the window, each further failure closes the account to password checks
 * for twice as long as the one before (1 s, 2 s, 4 s …), up to `maxSeconds`.
 * Guessing from many addresses is then slow (a few guesses an hour once the
 * cap is reached), while the owner is kept out at most `maxSeconds` after
 * the guessing stops, and not at all from a place they signed in from
 * before (see the identity's known addresses). In memory, like the limiter.
 */
export function createAccountBackoff(opts: { free: number; maxSeconds: number; windowSeconds: number; now?: () => number }) {
  const now = opts.now ?? Date.now;
  const accounts = new Map<string, { failures: number; last: number; closedUntil: number }>();

  return {
    /** Throws RateLimited while the account is closed. */
    check(account: string): void {
      const a = accounts.get(account);
      const at = now();
      if (a && a.closedUntil > at) throw new RateLimited(Math.max(1, Math.ceil((a.closedUntil - at) / 1000)));
    },
    fail(account: string): void {
      const at = now();
      let a = accounts.get(account);
      if (!a || at - a.last >= opts.windowSeconds * 1000) a = { failures: 0, last: at, closedUntil: 0 };
      a.failures++;
      a.last = at;
      if (a.failures > opts.free) a.closedUntil = at + Math.min(2 ** Math.min(a.failures - opts.free - 1, 30), opts.maxSeconds) * 1000;
      accounts.set(account, a);
      if (accounts.size > 100_000) {
        for (const [k, v] of accounts) if (at - v.last >= opts.windowSeconds * 1000 && v.closedUntil <= at) accounts.delete(k);
      }
    },
    succeed(account: string): void {
      accounts.delete(account);
    },
  };
}

/**
 * Addresses each account signed in from, for `keepSeconds`: the per-account
 * backoff does not apply there, so someone guessing elsewhere cannot keep
 * the owner out of their usual place (the per account and address limit
 * still does). At most `perAccount` addresses per account, the oldest
 * forgotten first.
 */
export function createKnownAddresses(opts: { keepSeconds: number; perAccount: number; now?: () => number }) {
  const now = opts.now ?? Date.now;
  const known = new Map<string, Map<string, number>>();
  return {
    has(account: string, address: string): boolean {
      const at = known.get(account)?.get(address);
      return at !== undefined && now() - at < opts.keepSeconds * 1000;
    },
    add(account: string, address: string): void {
      const addresses = known.get(account) ?? new Map<string, number>();
      addresses.delete(address);
      addresses.set(address, now());
      while (addresses.size > opts.perAccount) addresses.delete(addresses.keys().next().value!);
      known.set(account, addresses);
      if (known.size > 100_000) known.delete(known.keys().next().value!);
    },
  };
}

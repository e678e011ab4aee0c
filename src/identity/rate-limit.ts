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

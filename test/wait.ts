/**
 * Polls `probe` until it returns something other than undefined/false, and
 * returns that. For state the product reaches asynchronously (a phase, a log
 * line, a counter): the deadline is generous, it is never a timing target,
 * and running out of it throws saying what was awaited and what was last seen.
 */
export async function waitUntil<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, opts: { timeoutMs?: number; everyMs?: number; last?: () => unknown } = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    const got = await probe();
    if (got !== undefined && got !== false) return got;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${opts.last ? ` (last seen: ${JSON.stringify(opts.last())})` : ''}`);
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 100));
  }
}

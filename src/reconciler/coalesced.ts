/**
 * Runs `fn` now, or once more after the run under way (which may have read
 * its inputs too early), never two at once: a burst of calls costs one or
 * two runs. `run` resolves when a run that began after the call has ended.
 */
export function coalesced(fn: () => Promise<void>): { run: () => Promise<void>; idle: () => Promise<void> } {
  let running: Promise<void> | undefined;
  let again = false;
  const run = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await fn();
      } while (again);
    })().finally(() => {
      // after the assignment above, even when nothing was awaited
      running = undefined;
    });
    return running;
  };
  return { run, idle: () => running ?? Promise.resolve() };
}

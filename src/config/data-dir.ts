import { accessSync, chmodSync, constants, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError } from './load.js';

const errnoOf = (err: unknown) => (err as NodeJS.ErrnoException).code;

/**
 * Creates `dir` and its missing parents one by one. Node's recursive mkdir
 * loops forever where a parent exists but refuses new entries with ENOENT
 * (`/proc/x`), so each level is made, and its failure reported, here.
 */
function makeDirectory(dir: string): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
    return;
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'EEXIST') {
      if (!statSync(dir).isDirectory()) throw new ConfigError(`dataDir: ${dir} exists and is not a directory`);
      return;
    }
    if (code !== 'ENOENT' || dirname(dir) === dir) throw new ConfigError(`dataDir: cannot create ${dir}: ${(err as Error).message}`);
  }
  makeDirectory(dirname(dir));
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if (errnoOf(err) !== 'EEXIST') throw new ConfigError(`dataDir: cannot create ${dir}: ${(err as Error).message}`);
  }
}

/**
 * Makes the data directory ready: created if missing, a directory, private
 * to its owner (it holds the database and every sandbox's state), and
 * writable. Fails with a ConfigError saying which and why.
 */
export function prepareDataDir(dir: string): void {
  makeDirectory(dir);
  try {
    chmodSync(dir, 0o700);
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (err) {
    throw new ConfigError(`dataDir: ${dir} is not usable: ${(err as Error).message}`);
  }
}

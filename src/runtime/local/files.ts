import { open, rename, rm } from 'node:fs/promises';

/**
 * Replaces a file's content all at once: written and synced under a
 * temporary name beside it, then renamed over it. A crash at any moment
 * leaves either the old content or the new, never an empty or half file.
 */
let written = 0;

export async function writeFileAtomic(path: string, content: string, mode = 0o600): Promise<void> {
  const tmp = `${path}.${process.pid}.${++written}.tmp`;
  try {
    const fh = await open(tmp, 'w', mode);
    try {
      await fh.writeFile(content);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

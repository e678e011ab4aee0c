import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, rename, rm, rmdir, stat, truncate, writeFile } from 'node:fs/promises';
import { run } from './exec.js';

/**
 * Homes are sparse ext4 images, one per workspace, loop-mounted while the
 * workspace runs: writing past the profile's size fails with ENOSPC, and one
 * workspace filling its home never touches another's (this kernel has no
 * project quotas).
 */
export async function isMounted(dir: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((line) => line.split(' ')[4] === dir);
}

export async function ensureHome(image: string, mountpoint: string, bytes: number, uid: number, gid: number): Promise<void> {
  if (!existsSync(image)) {
    const fresh = `${image}.new`;
    await rm(fresh, { force: true });
    await writeFile(fresh, '', { mode: 0o600 });
    await truncate(fresh, bytes);
    await run('mkfs.ext4', ['-q', '-F', '-m', '0', '-E', `root_owner=${uid}:${gid},lazy_itable_init=1`, '-L', 'atrium-home', fresh]);
    // renamed only once complete, so a crash never leaves a half-made image in place
    await rename(fresh, image);
  } else if ((await stat(image)).size < bytes) {
    // the profile grew: grow the image, and the filesystem at mount time
    await truncate(image, bytes);
    await run('e2fsck', ['-f', '-p', image]).catch(() => undefined);
    await run('resize2fs', [image]);
  }
  await mkdir(mountpoint, { recursive: true, mode: 0o700 });
  if (!(await isMounted(mountpoint))) await run('mount', ['-o', 'loop,nosuid,nodev,noatime', image, mountpoint]);
  await chown(mountpoint, uid, gid);
  await chmod(mountpoint, 0o700);
  await rmdir(`${mountpoint}/lost+found`).catch(() => undefined);
}

export async function unmountHome(mountpoint: string): Promise<void> {
  if (await isMounted(mountpoint)) {
    await run('umount', [mountpoint]).catch(async () => run('umount', ['-l', mountpoint]));
  }
  await rmdir(mountpoint).catch(() => undefined);
}

import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, readFile, rename, rm, rmdir, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { VolumeSpec, VolumeState } from '../types.js';
import { run } from './exec.js';
import { isMounted } from './home.js';

/**
 * Team volumes on this machine: one sparse ext4 image per volume
 * (`volumes/<id>.img`), loop-mounted once on the host (`volumes/mnt/<id>`)
 * and bind-mounted into every sandbox that mounts it, read-only by the
 * kernel where the workspace may only read. The volume's root belongs to
 * the team's group, set-group-id, with a default ACL giving the group
 * write: files one member makes, another can change.
 */
export interface LocalVolumes {
  /**
   * The host directory of a volume, its image made, grown and mounted as
   * `v` says, held mounted until `unpin` (once the sandbox that binds it
   * runs, or its start failed).
   */
  ensure(v: VolumeSpec, gid: number): Promise<string>;
  unpin(id: string): void;
  /**
   * Unmounts a volume from the host once no sandbox binds it (`users`
   * counts those that do) and no start holds it: its next use mounts it
   * afresh, grown offline if it grew meanwhile.
   */
  release(id: string, users: () => Promise<number>): Promise<void>;
  /** Removes the storage of volumes not in `keep`; grows mounted ones that grew. */
  sync(keep: VolumeState[]): Promise<void>;
}

export function createVolumes(dir: string): LocalVolumes {
  const base = join(dir, 'volumes');
  const image = (id: string) => join(base, `${id}.img`);
  const mountpoint = (id: string) => join(base, 'mnt', id);
  const locks = new Map<string, Promise<unknown>>();
  const pins = new Map<string, number>();
  const one = <T>(id: string, fn: () => Promise<T>): Promise<T> => {
    const next = (locks.get(id) ?? Promise.resolve()).then(fn, fn);
    locks.set(id, next.catch(() => undefined));
    return next;
  };

  /** The loop device backing a mounted volume. */
  async function loopOf(mnt: string): Promise<string | undefined> {
    const info = await readFile('/proc/self/mountinfo', 'utf8');
    const line = info.split('\n').find((l) => l.split(' ')[4] === mnt);
    return line?.split(' - ')[1]?.split(' ')[1];
  }

  /** Bytes the ext4 filesystem on `device` (an image or its loop device) spans. */
  async function fsBytes(device: string): Promise<number> {
    const { stdout } = await run('dumpe2fs', ['-h', device]);
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(stdout)?.[1] ?? 0);
    return field('Block count') * field('Block size');
  }

  /**
   * Grows a volume's image to `bytes`, and its filesystem to the image:
   * online while mounted where the kernel allows it (it takes
   * CAP_SYS_RESOURCE), otherwise offline at its next mount.
   */
  async function grow(id: string, bytes: number): Promise<void> {
    const img = image(id);
    if ((await stat(img)).size < bytes) await truncate(img, bytes);
    const size = (await stat(img)).size;
    const mnt = mountpoint(id);
    const loop = (await isMounted(mnt)) ? await loopOf(mnt) : undefined;
    if ((await fsBytes(loop ?? img)) >= size) return;
    if (loop) {
      await run('losetup', ['-c', loop]);
      await run('resize2fs', [loop], { timeoutMs: 300_000 }).catch(() => undefined);
    } else {
      await run('e2fsck', ['-f', '-p', img], { timeoutMs: 300_000 }).catch(() => undefined);
      await run('resize2fs', [img], { timeoutMs: 300_000 });
    }
  }

  return {
    ensure: (v, gid) =>
      one(v.id, async () => {
        await mkdir(join(base, 'mnt'), { recursive: true, mode: 0o700 });
        const img = image(v.id);
        const mnt = mountpoint(v.id);
        if (!existsSync(img)) {
          const fresh = `${img}.new`;
          await rm(fresh, { force: true });
          await writeFile(fresh, '', { mode: 0o600 });
          await truncate(fresh, v.sizeBytes);
          await run('mkfs.ext4', ['-q', '-F', '-m', '0', '-E', `root_owner=0:${gid},lazy_itable_init=1`, '-L', 'atrium-volume', fresh], { timeoutMs: 300_000 });
          // in place only once complete: a crash never leaves a half-made volume
          await rename(fresh, img);
        } else {
          await grow(v.id, v.sizeBytes);
        }
        await mkdir(mnt, { recursive: true, mode: 0o700 });
        if (!(await isMounted(mnt))) {
          await run('mount', ['-o', 'loop,nosuid,nodev,noatime', img, mnt]);
          await rmdir(join(mnt, 'lost+found')).catch(() => undefined);
        }
        // the team's group owns it, new files inherit the group, and the group may change them; others only read (a dataset's readers are other teams)
        await chown(mnt, 0, gid);
        await chmod(mnt, 0o2775);
        await run('setfacl', ['-m', `g::rwx,d:g::rwx,d:m::rwx,d:o::r-x`, mnt]);
        pins.set(v.id, (pins.get(v.id) ?? 0) + 1);
        return mnt;
      }),

    unpin(id) {
      const n = (pins.get(id) ?? 0) - 1;
      if (n > 0) pins.set(id, n);
      else pins.delete(id);
    },

    release: (id, users) =>
      one(id, async () => {
        if (pins.has(id) || (await users()) > 0) return;
        const mnt = mountpoint(id);
        if (await isMounted(mnt)) await run('umount', [mnt]);
      }),

    async sync(keep) {
      const wanted = new Map(keep.map((v) => [v.id, v]));
      const present = (await readdir(base).catch(() => [] as string[])).filter((f) => f.endsWith('.img')).map((f) => f.slice(0, -4));
      for (const id of present) {
        const v = wanted.get(id);
        await one(id, async () => {
          if (v) return grow(id, v.sizeBytes);
          // deleted: nothing mounts it any more (the store refuses to delete a mounted volume)
          const mnt = mountpoint(id);
          if (await isMounted(mnt)) await run('umount', [mnt]).catch(() => run('umount', ['-l', mnt]));
          await rmdir(mnt).catch(() => undefined);
          await rm(image(id), { force: true });
        });
      }
    },
  };
}

import { chmodSync, chownSync, lstatSync, mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';

// A pod's surroundings as plain processes: what the workspace image's tests
// and the end-to-end Kubernetes tests give the entrypoint.

/** gid 100 (users): the pod's fsGroup */
export const USERS_GID = 100;
let generation = 0;

/** A free loopback port (bound and released). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Writes a Secret volume as the kubelet does: the files in a timestamped
 * directory, `..data` linking to it, each name a link through `..data`, in a
 * world-writable sticky directory; the files root's, readable by group 100
 * (fsGroup). A second call swaps `..data` at once, as an update does.
 */
export function writeSecret(dir: string, files: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o1777);
  const version = `..2026_01_01_00_00_00.${++generation}`;
  mkdirSync(join(dir, version), { mode: 0o755 });
  for (const [name, content] of Object.entries(files)) {
    const file = join(dir, version, name);
    writeFileSync(file, content);
    chownSync(file, 0, USERS_GID);
    chmodSync(file, 0o440);
  }
  const data = join(dir, '..data');
  const old = lstatSync(data, { throwIfNoEntry: false }) ? readlinkSync(data) : undefined;
  symlinkSync(version, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), data);
  for (const name of Object.keys(files)) if (!lstatSync(join(dir, name), { throwIfNoEntry: false })) symlinkSync(`..data/${name}`, join(dir, name));
  if (old) rmSync(join(dir, old), { recursive: true, force: true });
}


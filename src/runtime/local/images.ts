import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { basename, join, posix } from 'node:path';
import { Conflict, InvalidInput, NotFound } from '../../domain/index.js';
import { WORKLOAD_TOKEN_DIR, type ImageInfo, type ImageProgress, type ImageStore } from '../types.js';
import { run } from './exec.js';
import { writeFileAtomic } from './files.js';

/**
 * Workspace images on this machine (design §6): OCI images copied with
 * skopeo into one OCI layout (`images/store`, blobs shared between images),
 * named in `images/index.json`, and unpacked with umoci on first use into a
 * root per manifest digest (`images/roots/<hex>`) that every workspace of
 * that image shares read-only. A root no sandbox uses is removed after a
 * grace period; an image's blobs stay until the image is removed.
 */

/** skopeo transports an admin may import from; anything else (the Docker daemon, containers-storage) is refused. */
const TRANSPORTS = ['docker://', 'oci:', 'oci-archive:', 'docker-archive:', 'dir:'] as const;
const REFUSED_TRANSPORTS = ['containers-storage', 'docker-daemon', 'ostree', 'sif', 'tarball'];
/** What the sandbox's bundle mounts over: made in every root once, so no start writes into a shared root. */
const MOUNT_DIRS = ['proc', 'dev', 'sys', 'tmp', 'var/tmp', 'run', 'home/jovyan', '.atrium', 'etc/ssh', 'root'];
const MOUNT_FILES = ['.atrium/agent', 'etc/passwd', 'etc/group', 'etc/hostname', 'etc/hosts', 'etc/resolv.conf'];
const IMAGE_NAME = /^[a-z0-9][a-z0-9._/:@-]{0,127}$/;
export const IMAGE_NAME_RULE = 'lowercase letters, digits and . _ / : @ -, starting with a letter or digit, at most 128 characters';
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

interface IndexEntry {
  source: string;
  digest: string;
  sizeBytes: number;
  importedAt: string;
}
interface Index {
  images: Record<string, IndexEntry>;
}

/** The root a start uses: where it is, and the image's own environment. */
export interface ImageRoot {
  name: string;
  digest: string;
  rootfs: string;
  /** the image config's `Env` (PATH among them), `K=V` */
  env: string[];
}

export interface LocalImages extends ImageStore {
  /** The root of an image for a start, unpacked on its first use; an image not imported yet is imported first (a profile may name any reference). */
  root(ref: string, progress: (message: string) => void): Promise<ImageRoot>;
  /** Ends the hold `root` took on a root, once the sandbox's metadata names it (or the start failed). */
  unpin(digest: string): void;
  /** Marks a root used now (a start, a stop): the grace period counts from its last use. */
  touch(digest: string): Promise<void>;
  /** Removes roots no sandbox uses that were last used longer than the grace ago, and roots of images no longer imported. */
  collect(inUse: Set<string>): Promise<string[]>;
}

export interface ImagesOptions {
  /** the runtime's root-only directory */
  dir: string;
  /** how long an unused root is kept */
  graceMs: number;
  /** the digests of every sandbox's root, running or stopped */
  inUse(): Promise<Map<string, string[]>>;
  log: { warn(obj: unknown, msg?: string): void };
}

/**
 * What `skopeo` copies from: an explicit transport (`docker://`, `oci:`,
 * `oci-archive:`, `docker-archive:`, `dir:`), a path to an OCI layout
 * directory or an archive file, or a registry reference such as
 * `python:3.11` (`docker://`).
 */
export async function skopeoSource(source: string): Promise<string> {
  const s = source.trim();
  if (s === '' || s.startsWith('-') || /[\s\0]/.test(s)) throw new InvalidInput(`image source ${JSON.stringify(source)}: not an image reference or path`);
  if (TRANSPORTS.some((t) => s.startsWith(t))) return s;
  const transport = /^([a-z-]+):/.exec(s)?.[1];
  if (transport && REFUSED_TRANSPORTS.includes(transport)) {
    throw new InvalidInput(`image source ${JSON.stringify(source)}: the ${transport}: transport reads this machine's container engines and is not supported; use docker://, oci:, oci-archive:, docker-archive: or dir:`);
  }
  if (s.startsWith('/') || s.startsWith('./') || s.startsWith('../')) {
    if (existsSync(join(s, 'oci-layout'))) return `oci:${s}`;
    if (existsSync(join(s, 'manifest.json')) && existsSync(join(s, 'version'))) return `dir:${s}`;
    if (existsSync(s)) return (await archiveHolds(s, 'oci-layout')) ? `oci-archive:${s}` : `docker-archive:${s}`;
    throw new InvalidInput(`image source ${s}: no such file or directory`);
  }
  return `docker://${s}`;
}

/** Whether a tar archive has `entry` at its top (an OCI layout has `oci-layout`, a `docker save` archive `manifest.json`). */
async function archiveHolds(file: string, entry: string): Promise<boolean> {
  const { stdout } = await run('tar', ['-tf', file], { timeoutMs: 120_000 }).catch(() => ({ stdout: '' }));
  return stdout.split('\n').some((l) => l.replace(/^\.\//, '') === entry);
}

/** The name an image gets when the admin gives none: the reference without its transport, or the file's name. */
export function defaultImageName(source: string): string {
  let s = source.replace(/^(docker:\/\/|oci-archive:|docker-archive:|oci:|dir:)/, '');
  if (source.startsWith('oci') || source.startsWith('docker-archive') || source.startsWith('dir:') || s.startsWith('/') || s.startsWith('.')) {
    // a path, maybe with :tag at its end
    const m = /^(.*?)(?::([A-Za-z0-9_.-]+))?$/.exec(s)!;
    s = basename(m[1]!).replace(/\.(oci\.tar|tar\.gz|tgz|tar|oci)$/, '') + (m[2] ? `:${m[2]}` : '');
  }
  const name = s.toLowerCase().replace(/[^a-z0-9._/:@-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 128);
  if (!IMAGE_NAME.test(name)) throw new InvalidInput(`image source ${source}: give it a name with --name (${IMAGE_NAME_RULE})`);
  return name;
}

export function checkImageName(name: string): void {
  if (!IMAGE_NAME.test(name)) throw new InvalidInput(`image name ${JSON.stringify(name)}: ${IMAGE_NAME_RULE}`);
}

/** The tag an image has in the shared layout: its name hashed, since names hold characters layout tags do not. */
const tagOf = (name: string) => `n${createHash('sha256').update(name).digest('hex').slice(0, 24)}`;
const hexOf = (digest: string) => digest.replace(/^sha256:/, '');

/** Runs a tool, handing each line of its output to `line`; rejects with its last lines on failure. */
function runLines(file: string, args: string[], line: (l: string) => void, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    /** the last lines of standard error: what failed, without the progress around it */
    const tail: string[] = [];
    const take = (errors: boolean) => (chunk: Buffer) => {
      for (const l of chunk.toString().split(/\r|\n/)) {
        const t = l.trim();
        if (!t) continue;
        if (errors) {
          tail.push(t);
          if (tail.length > 5) tail.shift();
        }
        line(t);
      }
    };
    child.stdout.on('data', take(false));
    child.stderr.on('data', take(true));
    child.on('error', (err) => reject(new Error(`${file}: ${err.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(signal ? `${file} was stopped (${signal}${signal === 'SIGTERM' ? ', too slow' : ''})` : tail.slice(-2).join('; ') || `${file} exited with ${code}`));
    });
  });
}

/** skopeo's and umoci's errors carry Go's call chain; people need its last, telling part. */
function cleanToolError(message: string): string {
  return message.replace(/time="[^"]*" level=\w+ msg="([^"]*)"/g, '$1').replace(/\s+/g, ' ').trim();
}

/** Resolves `path` inside `root` as the sandbox would see it: symlinks followed, never out of the root. */
async function resolveInRoot(root: string, path: string, hops = 0): Promise<string | undefined> {
  if (hops > 40) return undefined;
  const parts = posix.normalize(path).split('/').filter(Boolean);
  let at = '/';
  for (let i = 0; i < parts.length; i++) {
    const next = posix.join(at, parts[i]!);
    const st = await lstat(join(root, next)).catch(() => undefined);
    if (!st) return undefined;
    if (st.isSymbolicLink()) {
      const target = await readlink(join(root, next));
      const rest = parts.slice(i + 1).join('/');
      const base = target.startsWith('/') ? target : posix.join(at, target);
      return resolveInRoot(root, posix.join(base, rest), hops + 1);
    }
    at = next;
  }
  return at;
}

/** Whether `command` is an executable file in the image, found on `path` (or at that path when it holds a slash). */
export async function hasExecutable(root: string, command: string, path = DEFAULT_PATH): Promise<boolean> {
  const candidates = command.includes('/') ? [command] : path.split(':').filter(Boolean).map((d) => posix.join(d, command));
  for (const c of candidates) {
    const inside = await resolveInRoot(root, c);
    if (!inside) continue;
    const st = await stat(join(root, inside)).catch(() => undefined);
    if (st?.isFile() && (st.mode & 0o111) !== 0) return true;
  }
  return false;
}

/**
 * Makes `rel` a real directory or file inside `root`, replacing any symlink
 * on the way: an image's `/home -> /somewhere` must not make root write
 * outside the image.
 */
async function makeInside(root: string, rel: string, kind: 'dir' | 'file'): Promise<void> {
  const parts = rel.split('/');
  let at = root;
  for (let i = 0; i < parts.length; i++) {
    at = join(at, parts[i]!);
    const last = i === parts.length - 1;
    const st = await lstat(at).catch(() => undefined);
    const want = last ? kind : 'dir';
    if (st && ((want === 'dir' && st.isDirectory()) || (want === 'file' && st.isFile()))) continue;
    if (st) await rm(at, { recursive: true, force: true });
    if (want === 'dir') await mkdir(at, { mode: 0o755 });
    else await writeFile(at, '', { mode: 0o644 });
  }
}

/**
 * Opens the image store in `<dir>/images`: removes what a crash left half
 * made (an unpack, an index being written).
 */
export async function createImages(opts: ImagesOptions): Promise<LocalImages> {
  const base = join(opts.dir, 'images');
  const store = join(base, 'store');
  const roots = join(base, 'roots');
  const indexPath = join(base, 'index.json');
  const policy = join(base, 'policy.json');
  await mkdir(roots, { recursive: true, mode: 0o700 });
  // signatures are not checked: an admin imports what they chose to trust, from where they chose
  await writeFileAtomic(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }), 0o600);
  for (const f of await readdir(roots)) if (f.endsWith('.new')) await rm(join(roots, f), { recursive: true, force: true });
  for (const f of await readdir(base)) if (f.endsWith('.tmp')) await rm(join(base, f), { force: true });

  /** store operations one at a time: skopeo rewrites the layout's index.json, umoci reads it */
  let queue: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = queue.then(fn, fn);
    queue = next.catch(() => undefined);
    return next;
  };
  const importing = new Map<string, Promise<ImageInfo>>();
  const unpacking = new Map<string, Promise<void>>();
  const listeners = new Set<(p: ImageProgress) => void>();
  /** roots starts are using before their sandbox's metadata names them */
  const pinned = new Map<string, number>();
  const emit = (p: ImageProgress) => {
    for (const l of listeners) l(p);
  };

  async function readIndex(): Promise<Index> {
    try {
      return JSON.parse(await readFile(indexPath, 'utf8')) as Index;
    } catch {
      return { images: {} };
    }
  }

  async function info(name: string, e: IndexEntry, users?: Map<string, string[]>): Promise<ImageInfo> {
    const used = users ?? (await opts.inUse());
    return { name, source: e.source, digest: e.digest, sizeBytes: e.sizeBytes, importedAt: e.importedAt, unpacked: existsSync(join(roots, hexOf(e.digest), '.complete')), usedBy: used.get(e.digest) ?? [] };
  }

  /** The manifest the layout's index names `tag`, and the size of its blobs. */
  async function manifestOf(tag: string): Promise<{ digest: string; sizeBytes: number }> {
    const index = JSON.parse(await readFile(join(store, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; size: number; annotations?: Record<string, string> }> };
    const m = index.manifests.find((x) => x.annotations?.['org.opencontainers.image.ref.name'] === tag);
    if (!m) throw new Error('the copied image is missing from the store');
    const manifest = JSON.parse(await readFile(join(store, 'blobs', 'sha256', hexOf(m.digest)), 'utf8')) as { config: { size: number }; layers: Array<{ size: number }> };
    return { digest: m.digest, sizeBytes: m.size + manifest.config.size + manifest.layers.reduce((s, l) => s + l.size, 0) };
  }

  async function doImport(source: string, name: string): Promise<ImageInfo> {
    const ref = await skopeoSource(source);
    const tag = tagOf(name);
    emit({ name, state: 'importing', message: `copying ${ref}` });
    try {
      const entry = await exclusive(async () => {
        let blobs = 0;
        await runLines('skopeo', ['--policy', policy, 'copy', '--retry-times', '2', '--preserve-digests', ref, `oci:${store}:${tag}`], (l) => {
          const m = /^Copying (blob|config) (?:sha256:)?([0-9a-f]{6,})/.exec(l);
          if (m) emit({ name, state: 'importing', message: m[1] === 'blob' ? `copying layer ${++blobs} (${m[2]!.slice(0, 12)})` : 'copying the image config' });
          else if (/^Writing manifest/.test(l)) emit({ name, state: 'importing', message: 'writing the manifest' });
        }, 60 * 60_000).catch((err: Error) => {
          throw new InvalidInput(`image ${name}: skopeo could not copy ${ref}: ${cleanToolError(err.message)}`);
        });
        const { digest, sizeBytes } = await manifestOf(tag);
        const e: IndexEntry = { source: ref, digest, sizeBytes, importedAt: new Date().toISOString() };
        const index = await readIndex();
        index.images[name] = e;
        await writeFileAtomic(indexPath, JSON.stringify(index, null, 2));
        return e;
      });
      const done = await info(name, entry);
      emit({ name, state: 'ready', message: `imported ${entry.digest}`, image: done });
      return done;
    } catch (err) {
      emit({ name, state: 'failed', message: (err as Error).message });
      throw err;
    }
  }

  function startImport(source: string, name: string): Promise<ImageInfo> {
    const running = importing.get(name);
    if (running) return running;
    const p = doImport(source, name).finally(() => importing.delete(name));
    importing.set(name, p);
    return p;
  }

  /** Unpacks the image tagged `tag` (manifest `digest`) into its root, once; the root appears whole or not at all. */
  function unpack(name: string, digest: string, progress: (m: string) => void): Promise<void> {
    const hex = hexOf(digest);
    const root = join(roots, hex);
    if (existsSync(join(root, '.complete'))) return Promise.resolve();
    const running = unpacking.get(hex);
    if (running) return running;
    const p = exclusive(async () => {
      if (existsSync(join(root, '.complete'))) return;
      const building = `${root}.new`;
      await rm(building, { recursive: true, force: true });
      await rm(root, { recursive: true, force: true });
      progress(`unpacking image ${name} (${digest.slice(0, 19)}), once for every workspace that uses it`);
      emit({ name, state: 'unpacking', message: `unpacking ${digest}` });
      // the manifest by its digest: the name may have moved to a newer import meanwhile
      const tag = `u${hex.slice(0, 24)}`;
      await tagDigest(tag, digest);
      try {
        await runLines('umoci', ['unpack', '--image', `${store}:${tag}`, building], () => undefined, 60 * 60_000).catch((err: Error) => {
          throw new Error(`image ${name}: umoci could not unpack ${digest}: ${cleanToolError(err.message)}`);
        });
      } finally {
        await untag(tag);
      }
      const rootfs = join(building, 'rootfs');
      for (const d of MOUNT_DIRS) await makeInside(rootfs, d, 'dir');
      for (const f of MOUNT_FILES) await makeInside(rootfs, f, 'file');
      // the workload token's directory, where the image's /var/run leads (Debian's is a link to /run)
      const varRun = await resolveInRoot(rootfs, '/var/run');
      await makeInside(rootfs, posix.join((varRun ?? '/var/run').slice(1), WORKLOAD_TOKEN_DIR.slice('/var/run/'.length)), 'dir');
      await writeFile(join(building, '.complete'), '');
      await rename(building, root);
      emit({ name, state: 'ready', message: `unpacked ${digest}` });
    }).finally(() => unpacking.delete(hex));
    unpacking.set(hex, p);
    return p;
  }

  /** Adds `tag` for `digest` to the layout's index (umoci unpacks by tag). */
  async function tagDigest(tag: string, digest: string): Promise<void> {
    const file = join(store, 'index.json');
    const index = JSON.parse(await readFile(file, 'utf8')) as { manifests: Array<{ digest: string; mediaType: string; size: number; annotations?: Record<string, string> }> };
    const m = index.manifests.find((x) => x.digest === digest);
    if (!m) throw new Error(`manifest ${digest} is not in the image store any more; import the image again`);
    index.manifests = index.manifests.filter((x) => x.annotations?.['org.opencontainers.image.ref.name'] !== tag);
    index.manifests.push({ mediaType: m.mediaType, digest: m.digest, size: m.size, annotations: { 'org.opencontainers.image.ref.name': tag } });
    await writeFileAtomic(file, JSON.stringify(index), 0o644);
  }

  async function untag(tag: string): Promise<void> {
    const file = join(store, 'index.json');
    const index = JSON.parse(await readFile(file, 'utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> };
    index.manifests = index.manifests.filter((x) => x.annotations?.['org.opencontainers.image.ref.name'] !== tag);
    await writeFileAtomic(file, JSON.stringify(index), 0o644);
  }

  async function imageEnv(hex: string): Promise<string[]> {
    const config = JSON.parse(await readFile(join(roots, hex, 'config.json'), 'utf8').catch(() => '{}')) as { process?: { env?: string[] } };
    return config.process?.env ?? [];
  }

  function unpin(digest: string): void {
    const n = (pinned.get(digest) ?? 0) - 1;
    if (n > 0) pinned.set(digest, n);
    else pinned.delete(digest);
  }

  async function touch(digest: string): Promise<void> {
    const mark = join(roots, `${hexOf(digest)}.used`);
    const now = new Date();
    await utimes(mark, now, now).catch(() => writeFile(mark, ''));
  }

  return {
    async list() {
      const index = await readIndex();
      const users = await opts.inUse();
      const items = await Promise.all(Object.entries(index.images).map(([name, e]) => info(name, e, users)));
      return items.sort((a, b) => a.name.localeCompare(b.name));
    },

    async get(name) {
      const e = (await readIndex()).images[name];
      if (!e) throw new NotFound(`image ${name}`);
      return info(name, e);
    },

    async import(source, o = {}) {
      const ref = await skopeoSource(source);
      const name = o.name ?? defaultImageName(ref);
      checkImageName(name);
      const l = o.progress && ((e: ImageProgress) => e.name === name && o.progress!(e));
      if (l) listeners.add(l);
      const done = startImport(ref, name).finally(() => l && listeners.delete(l));
      return { name, done };
    },

    importing: () => [...importing.keys()],

    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    async remove(name) {
      await exclusive(async () => {
        const index = await readIndex();
        const e = index.images[name];
        if (!e) throw new NotFound(`image ${name}`);
        if (importing.has(name)) throw new Conflict(`image ${name} is being imported`, 'image_in_use');
        const users = (await opts.inUse()).get(e.digest) ?? [];
        if (users.length > 0) throw new Conflict(`image ${name} is in use by ${users.length} workspace${users.length === 1 ? '' : 's'}; delete them first`, 'image_in_use', { workspaces: users });
        delete index.images[name];
        await writeFileAtomic(indexPath, JSON.stringify(index, null, 2));
        await untag(tagOf(name));
        const stillNamed = Object.values(index.images).some((x) => x.digest === e.digest);
        if (!stillNamed) await rm(join(roots, hexOf(e.digest)), { recursive: true, force: true }).then(() => rm(join(roots, `${hexOf(e.digest)}.used`), { force: true }));
        // blobs no image names any more
        await runLines('umoci', ['gc', '--layout', store], () => undefined, 10 * 60_000).catch((err: Error) => opts.log.warn({ err }, 'image store: umoci gc failed'));
      });
      emit({ name, state: 'removed', message: 'removed' });
    },

    async root(ref, progress) {
      let index = await readIndex();
      let name = ref;
      let e = index.images[ref];
      if (!e) {
        const source = await skopeoSource(ref);
        const found = Object.entries(index.images).find(([, x]) => x.source === source);
        if (found) [name, e] = found;
      }
      if (!e) {
        // a profile's reference that no admin imported: imported now, under that reference
        name = IMAGE_NAME.test(ref) ? ref : defaultImageName(await skopeoSource(ref));
        progress(`importing image ${ref} (first use)`);
        await startImport(ref, name);
        index = await readIndex();
        e = index.images[name]!;
      }
      pinned.set(e.digest, (pinned.get(e.digest) ?? 0) + 1);
      try {
        await unpack(name, e.digest, progress);
        await touch(e.digest);
      } catch (err) {
        unpin(e.digest);
        throw err;
      }
      const hex = hexOf(e.digest);
      return { name, digest: e.digest, rootfs: join(roots, hex, 'rootfs'), env: await imageEnv(hex) };
    },

    unpin,

    touch,

    async collect(inUse) {
      const index = await readIndex();
      const named = new Set(Object.values(index.images).map((e) => hexOf(e.digest)));
      const removed: string[] = [];
      for (const f of await readdir(roots)) {
        if (f.endsWith('.used') || f.endsWith('.new') || inUse.has(`sha256:${f}`) || pinned.has(`sha256:${f}`) || unpacking.has(f)) continue;
        const used = await stat(join(roots, `${f}.used`)).catch(() => undefined);
        const idle = Date.now() - (used?.mtimeMs ?? 0);
        if (named.has(f) && idle < opts.graceMs) continue;
        await exclusive(() => rm(join(roots, f), { recursive: true, force: true }));
        await rm(join(roots, `${f}.used`), { force: true });
        removed.push(`sha256:${f}`);
      }
      return removed;
    },
  };
}

import { execFile, spawn } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream, existsSync, lstatSync, readdirSync, readlinkSync, realpathSync, type Stats } from 'node:fs';
import { chmod, copyFile, cp, lchown, link, mkdir, mkdtemp, open, readdir, rename, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGzip } from 'node:zlib';

/**
 * Small OCI images built on this machine, with no registry: an OCI image
 * layout (`oci-layout`, `index.json`, `blobs/sha256/…`) written directly,
 * with one layer made by GNU tar from the host's own installed Debian
 * packages. Tests of image import read them with skopeo (`oci:` and
 * `oci-archive:` references) and unpack them with umoci.
 *
 * The same kind, marker and tag give the same digests on one machine, run
 * after run, as long as its packages do not change: files and directories
 * keep their modes and owners, files their modification times up to when
 * the newest of their packages was installed, directories that time (a
 * directory's own time changes whenever anything is added to it), and
 * nothing in the image records when it was built.
 */

/** An image in an OCI layout, as `buildImage`, `breakImage` and `archiveImage` hand it around. */
export interface BuiltImage {
  /** the layout directory */
  layout: string;
  /** the image's name in the layout (`org.opencontainers.image.ref.name`) */
  tag: string;
  /** the skopeo reference, `oci:<layout>:<tag>` */
  ref: string;
  /** `sha256:…` of the image manifest */
  manifestDigest: string;
  /** `sha256:…` of each layer blob, in order */
  layerDigests: string[];
}

/**
 * What an image holds:
 * - `jupyter`: Jupyter Notebook, sshd (with the SFTP server), bash, coreutils
 *   and python3, with everything they depend on;
 * - `python`: python3, bash and coreutils, with everything they depend on;
 * - `tiny`: the marker file and two directories (no shell, no python).
 */
export type ImageKind = 'jupyter' | 'python' | 'tiny';

export interface BuildOptions {
  kind: ImageKind;
  /** the image's tag in the layout; `latest` unless given */
  tag?: string;
  /** the text of `/etc/atrium-test-image`; the kind's name unless given */
  marker?: string;
  /** the layer as a plain tar (the default: fastest) or gzip-compressed */
  compression?: 'none' | 'gzip';
}

const MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;
const REF_NAME = 'org.opencontainers.image.ref.name';
/** the label every test image carries, with its kind as value */
export const KIND_LABEL = 'dev.atrium.test-image';
/** where the marker is in every test image */
export const MARKER_PATH = '/etc/atrium-test-image';
/** Debian's default PATH, the image's only environment variable */
export const IMAGE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** the modification time of the files the helper writes itself (not the host's), so they hash the same on every run */
const FIXED_TIME = new Date('2000-01-01T00:00:00Z');

/** The Debian packages whose dependency closure each kind holds. */
const ROOT_PACKAGES: Record<Exclude<ImageKind, 'tiny'>, string[]> = {
  jupyter: ['jupyter-notebook', 'openssh-server', 'openssh-sftp-server', 'bash', 'coreutils', 'python3'],
  python: ['python3', 'bash', 'coreutils'],
};
/** package files left out: documentation and translations */
const SKIPPED = ['usr/share/doc', 'usr/share/man', 'usr/share/locale', 'usr/share/info'];
/** host files no package owns that a working system needs (directories are taken whole) */
const HOST_EXTRAS = ['etc/ld.so.cache', 'etc/nsswitch.conf', 'etc/ssl/certs'];
/** the usr-merge links at the top of the root */
const TOP_LINKS = ['bin', 'sbin', 'lib', 'lib64'];
/**
 * The accounts the image's programs look up (sshd's privilege separation
 * user among them): written here, not copied from the host, whose own
 * users vary from run to run and machine to machine.
 */
const PASSWD = 'root:x:0:0:root:/root:/bin/bash\nsshd:x:100:65534::/run/sshd:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n';
const GROUP = 'root:x:0:\nnogroup:x:65534:\n';

const execFileP = promisify(execFile);

async function output(file: string, args: string[]): Promise<string> {
  const { stdout } = await execFileP(file, args, { maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' });
  return stdout;
}

/** The installed packages' names (`Package`), each with the name dpkg wants for it (`binary:Package`, arch-qualified when Multi-Arch: same). */
async function installedPackages(): Promise<Map<string, string>> {
  const out = await output('dpkg-query', ['-W', '-f=${Package}\t${binary:Package}\t${db:Status-Abbrev}\n']);
  const installed = new Map<string, string>();
  for (const line of out.split('\n')) {
    const [name, binary, status] = line.split('\t');
    if (name && binary && status?.[1] === 'i') installed.set(name, binary);
  }
  return installed;
}

/**
 * The installed packages `roots` need, themselves included: apt's recursive
 * dependencies (Depends and Pre-Depends, both sides of every alternative),
 * kept to the packages dpkg has installed.
 */
async function closure(roots: string[]): Promise<string[]> {
  const installed = await installedPackages();
  const missing = roots.filter((p) => !installed.has(p));
  if (missing.length > 0) throw new Error(`test image: packages not installed on this machine: ${missing.join(', ')} (apt-get install -y ${missing.join(' ')})`);
  const out = await output('apt-cache', ['depends', '--recurse', '--no-recommends', '--no-suggests', '--no-conflicts', '--no-breaks', '--no-replaces', '--no-enhances', ...roots]);
  const names = new Set<string>(roots);
  for (const line of out.split('\n')) {
    // package lines start at column 0 (`perl:any` as `perl`); virtual packages come as <name>, their providers as lines of their own
    if (line === '' || line.startsWith(' ') || line.startsWith('<')) continue;
    names.add(line.trim().replace(/:[a-z0-9]+$/, ''));
  }
  return [...names].filter((n) => installed.has(n)).map((n) => installed.get(n)!).sort();
}

/**
 * The host paths a kind's layer holds, relative to `/`, each with its
 * `lstat`: every directory, regular file and symlink of the packages, with
 * each path's parent resolved on the host (so
 * `/lib/x86_64-linux-gnu/libc.so.6` is taken as
 * `usr/lib/x86_64-linux-gnu/libc.so.6`, under the `lib -> usr/lib` link),
 * the directories above them, the host's files no package owns that the
 * programs need, and the alternatives that lead to files in the image.
 *
 * With them comes when the last of those packages was installed (its
 * `/var/lib/dpkg/info/<package>.list` written): no file a package brought is
 * newer than that, but files such as /etc/ld.so.cache are rewritten after,
 * so the layer records any later time as that one.
 */
async function hostPaths(kind: Exclude<ImageKind, 'tiny'>): Promise<{ paths: Map<string, Stats>; installedAt: number }> {
  const packages = await closure(ROOT_PACKAGES[kind]);
  let installedAt = 0;
  for (const p of packages) installedAt = Math.max(installedAt, (await stat(`/var/lib/dpkg/info/${p}.list`)).mtimeMs);
  const listed = await output('dpkg', ['-L', ...packages]);
  const paths = new Map<string, Stats>();
  const realDirs = new Map<string, string>();
  const realDir = (dir: string): string | undefined => {
    let real = realDirs.get(dir);
    if (real === undefined) {
      try {
        real = realpathSync(dir);
      } catch {
        real = '';
      }
      realDirs.set(dir, real);
    }
    return real === '' ? undefined : real;
  };
  const take = (abs: string): Stats | undefined => {
    const parent = realDir(posix.dirname(abs));
    if (parent === undefined) return undefined;
    const rel = posix.join(parent, posix.basename(abs)).slice(1);
    if (rel === '' || paths.has(rel) || SKIPPED.some((s) => rel === s || rel.startsWith(`${s}/`))) return undefined;
    let st: Stats;
    try {
      st = lstatSync(`/${rel}`);
    } catch {
      return undefined; // listed by dpkg, but not on disk (path-exclude, a removed conffile)
    }
    if (!st.isFile() && !st.isDirectory() && !st.isSymbolicLink()) return undefined;
    paths.set(rel, st);
    for (let up = posix.dirname(rel); up !== '.' && !paths.has(up); up = posix.dirname(up)) paths.set(up, lstatSync(`/${up}`));
    return st;
  };
  const takeTree = (abs: string): void => {
    const st = take(abs);
    if (!st?.isDirectory()) return;
    for (const entry of readdirSync(abs)) takeTree(posix.join(abs, entry));
  };

  // dpkg -L also prints lines such as "diverted by …" and "package diverts others to: …"
  for (const line of listed.split('\n')) if (line.startsWith('/')) take(line);
  // Python's compiled modules belong to no package (py3compile writes them after unpacking); an image without
  // them compiles every module at every start, into a read-only root that cannot keep the result
  const caches = new Map<string, string[]>();
  for (const line of listed.split('\n')) {
    if (!line.startsWith('/') || !line.endsWith('.py')) continue;
    const cache = posix.join(posix.dirname(line), '__pycache__');
    if (!caches.has(cache)) caches.set(cache, existsSync(cache) ? readdirSync(cache) : []);
    const stem = `${posix.basename(line, '.py')}.`;
    for (const f of caches.get(cache)!) if (f.startsWith(stem) && f.endsWith('.pyc') && f.slice(stem.length).split('.').length === 2) take(posix.join(cache, f));
  }
  for (const top of TOP_LINKS) if (lstatSync(`/${top}`, { throwIfNoEntry: false })?.isSymbolicLink()) take(`/${top}`);
  for (const extra of HOST_EXTRAS) takeTree(`/${extra}`);
  for (const entry of readdirSync('/etc')) if (/^python3/.test(entry) || (kind === 'jupyter' && entry === 'jupyter')) takeTree(`/etc/${entry}`);

  // update-alternatives' links (/usr/bin/awk -> /etc/alternatives/awk -> /usr/bin/mawk) belong to no package:
  // take those whose end is in the image, so the image has no dangling ones
  const leadsIn = (abs: string) => {
    try {
      return paths.has(realpathSync(abs).slice(1));
    } catch {
      return false;
    }
  };
  const alternatives = readdirSync('/etc/alternatives', { withFileTypes: true }).filter((e) => e.isSymbolicLink() && leadsIn(`/etc/alternatives/${e.name}`));
  for (const e of alternatives) take(`/etc/alternatives/${e.name}`);
  for (const dir of ['/usr/bin', '/usr/sbin']) {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isSymbolicLink() && readlinkSync(`${dir}/${e.name}`).startsWith('/etc/alternatives/') && leadsIn(`${dir}/${e.name}`)) take(`${dir}/${e.name}`);
    }
  }
  return { paths, installedAt: Math.ceil(installedAt / 1000) };
}

/** A stream that passes its data on unchanged while hashing it and counting its bytes. */
class Digester extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private hex: string | undefined;
  size = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    done(null, chunk);
  }
  /** `sha256:…` of everything that went through (once the stream has ended) */
  digest(): string {
    this.hex ??= this.hash.digest('hex');
    return `sha256:${this.hex}`;
  }
}

interface Blob {
  digest: string;
  size: number;
}

/** Writes `data` into the layout's blobs under its own digest. */
async function writeBlob(layout: string, data: Buffer | string): Promise<Blob> {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  const hex = createHash('sha256').update(buf).digest('hex');
  await writeFile(join(layout, 'blobs', 'sha256', hex), buf);
  return { digest: `sha256:${hex}`, size: buf.length };
}

/** Runs GNU tar over `list` (a `-T` file list, its `--directory=` lines included) and writes its archive into the layout as a layer blob, plain or gzip'd. */
async function writeLayer(layout: string, list: string, extraArgs: string[], compression: 'none' | 'gzip'): Promise<{ blob: Blob; diffId: string }> {
  const partial = join(layout, 'blobs', 'sha256', '.layer.partial');
  const tar = spawn('tar', ['--create', '--file=-', '--format=gnu', '--no-recursion', '--numeric-owner', ...extraArgs, '--directory=/', `--files-from=${list}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  tar.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve, reject) => {
    tar.on('error', reject);
    tar.on('close', resolve);
  });
  const plain = new Digester();
  const stored = compression === 'gzip' ? new Digester() : plain;
  const stages = compression === 'gzip' ? [plain, createGzip({ level: 1 }), stored] : [plain];
  // a failed tar is reported by its exit status below, whatever the stream saw
  const written = pipeline([tar.stdout, ...stages, createWriteStream(partial)]).then(
    () => undefined,
    (err: Error) => err,
  );
  const code = await exited;
  const streamError = await written;
  // exit 1 is "file changed as we read it": the layer would not be the same twice
  if (code !== 0) throw new Error(`tar exited with ${code} building a test image layer: ${stderr.trim().split('\n').slice(-3).join('; ')}`);
  if (streamError) throw streamError;
  const digest = stored.digest();
  await rename(partial, join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)));
  return { blob: { digest, size: stored.size }, diffId: plain.digest() };
}

/** Creates `dir` if needed; refuses one that holds anything. */
async function emptyDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const held = await readdir(dir);
  if (held.length > 0) throw new Error(`${dir} is not empty (it holds ${held.slice(0, 3).join(', ')}${held.length > 3 ? ' …' : ''})`);
}

/** Writes a file or directory of the helper's own into the staging directory, with a fixed mode (its time is fixed once all are written). */
async function stage(staging: string, rel: string, mode: number, content?: string): Promise<void> {
  const path = join(staging, rel);
  await mkdir(dirname(path), { recursive: true });
  if (content === undefined) await mkdir(path, { recursive: true });
  else await writeFile(path, content);
  await chmod(path, mode);
}

/** `tar` arguments that record the staged files as root's even when the helper runs as another user. */
async function ownerMaps(scratch: string): Promise<string[]> {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const args: string[] = [];
  if (uid !== 0) {
    await writeFile(join(scratch, 'owners'), `+${uid} root:0\n`);
    args.push(`--owner-map=${join(scratch, 'owners')}`);
  }
  if (gid !== 0) {
    await writeFile(join(scratch, 'groups'), `+${gid} root:0\n`);
    args.push(`--group-map=${join(scratch, 'groups')}`);
  }
  return args;
}

/** The platform of this machine in OCI's words. */
function architecture(): string {
  const arches: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', ia32: '386' };
  return arches[process.arch] ?? process.arch;
}

/**
 * Builds an OCI image layout at `dir` (created; it must not exist or be
 * empty) holding one single-layer image of the given kind, tagged `tag`
 * (`latest` unless given).
 *
 * `jupyter` and `python` take their files from the host: the files of the
 * installed Debian packages the kind needs and everything they depend on
 * (documentation, manual pages and translations left out), the usr-merge
 * links `bin`, `sbin`, `lib` and `lib64` when the host has them, and the
 * host's `/etc/ld.so.cache`, `/etc/nsswitch.conf`, `/etc/ssl/certs`,
 * `/etc/python3*` (and `/etc/jupyter` for `jupyter`) and the alternatives
 * that lead to files in the image. A minimal `/etc/passwd` and `/etc/group`
 * (root, sshd, nobody) are the image's own. Every image has
 * `/etc/atrium-test-image` holding `marker` (the kind's name unless given).
 *
 * The config sets `Env` to Debian's default PATH and the label
 * `dev.atrium.test-image` to the kind. Needs `tar`, `dpkg` and `apt-cache`
 * (Debian), and read access to the package files (root, in practice).
 */
export async function buildImage(dir: string, opts: BuildOptions): Promise<BuiltImage> {
  const tag = opts.tag ?? 'latest';
  const marker = opts.marker ?? opts.kind;
  const compression = opts.compression ?? 'none';
  await emptyDir(dir);
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const scratch = await mkdtemp(join(tmpdir(), 'atrium-oci-build-'));
  try {
    const host = opts.kind === 'tiny' ? { paths: new Map<string, Stats>(), installedAt: 0 } : await hostPaths(opts.kind);
    const own = new Map<string, { mode: number; content?: string }>([[MARKER_PATH.slice(1), { mode: 0o644, content: marker }]]);
    if (opts.kind === 'tiny') {
      own.set('etc', { mode: 0o755 });
      own.set('tmp', { mode: 0o1777 });
    } else {
      own.set('etc/passwd', { mode: 0o644, content: PASSWD });
      own.set('etc/group', { mode: 0o644, content: GROUP });
    }
    const hostDirs = [...host.paths].filter(([rel, st]) => st.isDirectory() && !own.has(rel)).sort(([a], [b]) => (a < b ? -1 : 1));
    const hostOthers = [...host.paths].filter(([rel, st]) => !st.isDirectory() && !own.has(rel)).map(([rel]) => rel).sort();

    // The host's directories are recreated in a staging directory, with their modes and owners: their times
    // on the host change whenever anything is added to them (/usr/bin, /tmp, /var/tmp …), so the layer records
    // the installation time for each. The helper's own files join them there.
    const staging = join(scratch, 'root');
    await mkdir(staging, { mode: 0o755 });
    const asRoot = process.getuid?.() === 0;
    for (const [rel, st] of hostDirs) {
      const path = join(staging, rel);
      await mkdir(path);
      if (asRoot) await lchown(path, st.uid, st.gid);
      await chmod(path, st.mode & 0o7777);
    }
    for (const [rel, { mode, content }] of own) await stage(staging, rel, mode, content);
    const installedAt = new Date(host.installedAt * 1000);
    for (const [rel] of hostDirs) await utimes(join(staging, rel), installedAt, installedAt);
    for (const rel of own.keys()) await utimes(join(staging, rel), FIXED_TIME, FIXED_TIME);
    const staged = [...hostDirs.map(([rel]) => rel), ...own.keys()].sort();

    const tarArgs = await ownerMaps(scratch);
    if (host.installedAt > 0) tarArgs.push(`--mtime=@${host.installedAt}`, '--clamp-mtime');
    // one tar run over both roots: the directories and the helper's files from the staging directory, then the host's other files
    // from / (spelt `/.`: tar 1.34 reads a `--directory=/` line of a file list as an empty name)
    const list = join(scratch, 'files');
    await writeFile(list, [`--directory=${staging}`, ...staged, ...(hostOthers.length > 0 ? ['--directory=/.', ...hostOthers] : []), ''].join('\n'));
    const { blob: layer, diffId } = await writeLayer(dir, list, tarArgs, compression);

    const config = await writeBlob(
      dir,
      JSON.stringify({
        created: '1970-01-01T00:00:00Z',
        architecture: architecture(),
        os: 'linux',
        config: { Env: [`PATH=${IMAGE_PATH}`], Labels: { [KIND_LABEL]: opts.kind } },
        rootfs: { type: 'layers', diff_ids: [diffId] },
        history: [{ created: '1970-01-01T00:00:00Z', created_by: `atrium test image (${opts.kind})` }],
      }),
    );
    const manifest = await writeBlob(
      dir,
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.manifest,
        config: { mediaType: MEDIA.config, digest: config.digest, size: config.size },
        layers: [{ mediaType: compression === 'gzip' ? MEDIA.layerGzip : MEDIA.layer, digest: layer.digest, size: layer.size }],
      }),
    );
    await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await writeFile(
      join(dir, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.index,
        manifests: [{ mediaType: MEDIA.manifest, digest: manifest.digest, size: manifest.size, platform: { architecture: architecture(), os: 'linux' }, annotations: { [REF_NAME]: tag } }],
      }),
    );
    return { layout: dir, tag, ref: `oci:${dir}:${tag}`, manifestDigest: manifest.digest, layerDigests: [layer.digest] };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

const blobPath = (layout: string, digest: string) => join(layout, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));

/**
 * Copies the image's layout to `dir` (created; it must not exist or be
 * empty) and breaks the copy's first layer: `missing-layer` deletes its
 * blob, `wrong-digest` changes one byte of it, so its sha256 no longer
 * matches its name. Unchanged blobs are hard links to the original's when
 * both are on one file system (the original is never written to).
 */
export async function breakImage(src: BuiltImage, dir: string, how: 'missing-layer' | 'wrong-digest'): Promise<BuiltImage> {
  const first = src.layerDigests[0];
  if (first === undefined) throw new Error(`${src.ref} has no layer to break`);
  await emptyDir(dir);
  await cp(join(src.layout, 'oci-layout'), join(dir, 'oci-layout'));
  await cp(join(src.layout, 'index.json'), join(dir, 'index.json'));
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const hex of await readdir(join(src.layout, 'blobs', 'sha256'))) {
    const from = join(src.layout, 'blobs', 'sha256', hex);
    const to = join(dir, 'blobs', 'sha256', hex);
    if (`sha256:${hex}` === first) {
      if (how === 'wrong-digest') await copyFile(from, to);
      continue;
    }
    await link(from, to).catch(() => copyFile(from, to));
  }
  const target = blobPath(dir, first);
  if (how === 'wrong-digest') {
    const { size } = await stat(target);
    const file = await open(target, 'r+');
    try {
      // a byte in the middle: a tar's contents, or a gzip stream's compressed data
      const at = Math.floor(size / 2);
      const byte = Buffer.alloc(1);
      await file.read(byte, 0, 1, at);
      byte[0] = byte[0]! ^ 0xff;
      await file.write(byte, 0, 1, at);
    } finally {
      await file.close();
    }
  }
  return { ...src, layout: dir, ref: `oci:${dir}:${src.tag}` };
}

/**
 * Packs the image's layout into an `oci-archive` file at `file` (a tar of
 * the layout directory: `oci-layout`, `index.json`, `blobs/`) and returns
 * its skopeo reference, `oci-archive:<file>:<tag>`.
 */
export async function archiveImage(src: BuiltImage, file: string): Promise<string> {
  await mkdir(dirname(file), { recursive: true });
  const partial = `${file}.partial`;
  try {
    await execFileP('tar', ['--create', `--file=${partial}`, '--format=gnu', '--sort=name', '--numeric-owner', '--owner=0', '--group=0', `--directory=${src.layout}`, 'oci-layout', 'index.json', 'blobs']);
    await rename(partial, file);
  } catch (err) {
    await unlink(partial).catch(() => undefined);
    throw err;
  }
  return `oci-archive:${file}:${src.tag}`;
}

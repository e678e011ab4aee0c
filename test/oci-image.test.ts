import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { archiveImage, breakImage, buildImage, IMAGE_PATH, KIND_LABEL, MARKER_PATH, type BuiltImage, type ImageKind } from './oci-image.js';

/**
 * The test images of test/oci-image.ts, read by the tools Atrium imports
 * images with: skopeo inspects and copies them (`oci:` and `oci-archive:`),
 * umoci unpacks them, and the unpacked Jupyter and Python roots run their
 * programs under chroot, which proves each root holds everything its
 * programs load. Broken copies (a layer missing, a layer whose bytes no
 * longer match its digest) are refused by `skopeo copy`.
 */

const TOOLS = ['/usr/bin/skopeo', '/usr/bin/umoci', '/usr/bin/tar', '/usr/bin/apt-cache', '/usr/bin/dpkg', '/usr/sbin/chroot', '/usr/bin/jupyter-notebook', '/usr/sbin/sshd', '/usr/lib/openssh/sftp-server', '/usr/bin/python3'];

/** Root (to read every package file, and to chroot) and the tools; in CI a missing one is an error, elsewhere a skip with the reason. */
function available(): true | string {
  const missing = process.getuid?.() !== 0 ? 'root (to read every package file and to chroot)' : TOOLS.find((t) => !existsSync(t));
  if (missing === undefined) return true;
  if (process.env.CI) throw new Error(`the OCI image suite needs ${missing}; CI runs it as root after scripts/deps.sh`);
  return `needs ${missing} (scripts/deps.sh installs the tools)`;
}
const ready = available();

type Result = { code: number; stdout: string; stderr: string };

/** Runs a program to its end; never throws on a non-zero exit. */
function run(file: string, args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
  });
}

/** Runs a program and fails the test, with its output, unless it exits 0. */
async function ok(file: string, args: string[], env?: Record<string, string>): Promise<string> {
  const r = await run(file, args, env);
  assert.equal(r.code, 0, `${file} ${args.join(' ')} exited with ${r.code}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Runs a program inside an unpacked root, with the image's PATH. */
const inRoot = (rootfs: string, args: string[]) => run('/usr/sbin/chroot', [rootfs, ...args], { PATH: IMAGE_PATH });

describe('test OCI images (skopeo, umoci)', { skip: ready === true ? false : ready }, () => {
  let work = '';
  let policy = '';
  const built = new Map<ImageKind, BuiltImage>();
  const roots = new Map<ImageKind, string>();
  let copies = 0;

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'atrium-oci-test-'));
    // as Atrium runs skopeo: with a policy of its own, not the machine's
    policy = join(work, 'policy.json');
    writeFileSync(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  });
  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const skopeo = (args: string[]) => run('/usr/bin/skopeo', ['--policy', policy, ...args]);
  const inspect = async (ref: string) => {
    const r = await skopeo(['inspect', ref]);
    assert.equal(r.code, 0, `skopeo inspect ${ref}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  /** skopeo copy into a fresh layout, then umoci unpack; the unpacked root */
  const unpack = async (ref: string): Promise<string> => {
    const n = ++copies;
    const store = join(work, `store-${n}`);
    const bundle = join(work, `bundle-${n}`);
    const copied = await skopeo(['copy', ref, `oci:${store}:x`]);
    assert.equal(copied.code, 0, `skopeo copy ${ref}: ${copied.stderr}`);
    await ok('/usr/bin/umoci', ['unpack', '--image', `${store}:x`, bundle]);
    return join(bundle, 'rootfs');
  };
  const executable = (path: string) => {
    assert.ok(statSync(path).isFile(), `${path} is a file`);
    accessSync(path, constants.X_OK);
  };

  for (const kind of ['tiny', 'python', 'jupyter'] as const) {
    it(`builds a ${kind} image that skopeo inspects and copies and umoci unpacks`, async (t) => {
      const layout = join(work, kind);
      const started = performance.now();
      const image = await buildImage(layout, { kind, marker: `marker of ${kind}` });
      const ms = Math.round(performance.now() - started);
      const bytes = statSync(join(layout, 'blobs', 'sha256', image.layerDigests[0]!.slice('sha256:'.length))).size;
      t.diagnostic(`${kind}: built in ${ms} ms, layer ${(bytes / 1e6).toFixed(1)} MB, ${image.manifestDigest}`);
      built.set(kind, image);
      assert.equal(image.ref, `oci:${layout}:latest`);
      assert.equal(image.layerDigests.length, 1);

      const info = await inspect(image.ref);
      assert.equal(info.Digest, image.manifestDigest);
      assert.deepEqual(info.Layers, image.layerDigests);
      assert.deepEqual(info.Env, [`PATH=${IMAGE_PATH}`]);
      assert.equal(info.Labels[KIND_LABEL], kind);
      assert.equal(info.Os, 'linux');

      const rootfs = await unpack(image.ref);
      roots.set(kind, rootfs);
      assert.equal(readFileSync(join(rootfs, MARKER_PATH), 'utf8'), `marker of ${kind}`);
      if (kind === 'tiny') {
        assert.equal(statSync(join(rootfs, 'tmp')).mode & 0o7777, 0o1777);
        for (const absent of ['usr', 'bin', 'etc/passwd']) assert.equal(existsSync(join(rootfs, absent)), false, `${absent} is not in the tiny image`);
        return;
      }
      for (const link of ['bin', 'sbin', 'lib', 'lib64']) {
        if (lstatSync(`/${link}`).isSymbolicLink()) assert.ok(lstatSync(join(rootfs, link)).isSymbolicLink(), `${link} is a link, as on the host`);
      }
      for (const program of ['usr/bin/bash', 'usr/bin/python3', 'usr/bin/ls']) executable(join(rootfs, program));
      assert.equal(existsSync(join(rootfs, 'usr/share/doc/bash')), false, 'documentation is left out');
      assert.ok(existsSync(join(rootfs, 'etc/ld.so.cache')));
      assert.match(readFileSync(join(rootfs, 'etc/passwd'), 'utf8'), /^root:x:0:0:/);
      if (kind === 'jupyter') {
        for (const program of ['usr/bin/jupyter-notebook', 'usr/sbin/sshd', 'usr/lib/openssh/sftp-server', 'usr/bin/ssh-keygen']) executable(join(rootfs, program));
      } else {
        for (const absent of ['usr/bin/jupyter-notebook', 'usr/sbin/sshd']) assert.equal(existsSync(join(rootfs, absent)), false, `${absent} is not in the python image`);
      }
    });
  }

  it('the unpacked jupyter root runs Jupyter, python, sshd, the SFTP server and bash under chroot', async () => {
    const rootfs = roots.get('jupyter');
    assert.ok(rootfs, 'the jupyter image was unpacked');
    // what a container's runtime would mount: /dev/null, and the directory sshd's privilege separation wants
    await ok('/usr/bin/mknod', ['-m', '666', join(rootfs, 'dev/null'), 'c', '1', '3']);
    mkdirSync(join(rootfs, 'run/sshd'), { recursive: true });

    const version = await inRoot(rootfs, ['/usr/bin/jupyter-notebook', '--version']);
    assert.equal(version.code, 0, version.stderr);
    assert.match(version.stdout.trim(), /^\d+\.\d+\.\d+$/);
    const imports = await inRoot(rootfs, ['/usr/bin/python3', '-c', 'import notebook.notebookapp, ipykernel, zmq, tornado, ssl, sqlite3; print("imported")']);
    assert.equal(imports.code, 0, imports.stderr);
    assert.equal(imports.stdout.trim(), 'imported');

    const keygen = await inRoot(rootfs, ['/usr/bin/ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', '/tmp/host-key']);
    assert.equal(keygen.code, 0, keygen.stderr);
    const sshd = await inRoot(rootfs, ['/usr/sbin/sshd', '-t', '-f', '/dev/null', '-h', '/tmp/host-key']);
    assert.equal(sshd.code, 0, `sshd -t: ${sshd.stderr}`);
    const sftp = await inRoot(rootfs, ['/usr/lib/openssh/sftp-server', '-Q', 'requests']);
    assert.equal(sftp.code, 0, sftp.stderr);
    assert.match(sftp.stdout, /^open$/m);
    const shell = await inRoot(rootfs, ['/bin/bash', '-c', 'echo shell | tr a-z A-Z; id -un']);
    assert.equal(shell.code, 0, shell.stderr);
    assert.equal(shell.stdout, 'SHELL\nroot\n');
  });

  it('the unpacked python root runs python3 and bash under chroot', async () => {
    const rootfs = roots.get('python');
    assert.ok(rootfs, 'the python image was unpacked');
    const py = await inRoot(rootfs, ['/usr/bin/python3', '-c', 'import ssl, sqlite3, json, venv; print("imported")']);
    assert.equal(py.code, 0, py.stderr);
    assert.equal(py.stdout.trim(), 'imported');
    const shell = await inRoot(rootfs, ['/bin/bash', '-c', 'ls /usr/bin/python3 && cat /etc/atrium-test-image']);
    assert.equal(shell.code, 0, shell.stderr);
    assert.equal(shell.stdout, '/usr/bin/python3\nmarker of python');
  });

  it('gives the same content the same digests, and another marker another digest', async () => {
    const python = built.get('python');
    const tiny = built.get('tiny');
    assert.ok(python && tiny, 'the python and tiny images were built');
    const again = await buildImage(join(work, 'python-again'), { kind: 'python', marker: 'marker of python', tag: 'other' });
    assert.equal(again.manifestDigest, python.manifestDigest, 'the tag lives in index.json, not in the manifest');
    assert.deepEqual(again.layerDigests, python.layerDigests);
    assert.equal(again.ref, `oci:${join(work, 'python-again')}:other`);
    const other = await buildImage(join(work, 'tiny-other'), { kind: 'tiny', marker: 'another marker' });
    assert.notEqual(other.manifestDigest, tiny.manifestDigest);
    await assert.rejects(buildImage(join(work, 'tiny-other'), { kind: 'tiny' }), /not empty/);
  });

  it('builds a gzip layer when asked', async () => {
    const image = await buildImage(join(work, 'tiny-gzip'), { kind: 'tiny', compression: 'gzip' });
    const raw = JSON.parse((await skopeo(['inspect', '--raw', image.ref])).stdout);
    assert.equal(raw.layers[0].mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    const rootfs = await unpack(image.ref);
    assert.equal(readFileSync(join(rootfs, MARKER_PATH), 'utf8'), 'tiny');
  });

  for (const how of ['missing-layer', 'wrong-digest'] as const) {
    it(`skopeo inspects but refuses to copy an image with a ${how}`, async (t) => {
      const tiny = built.get('tiny');
      assert.ok(tiny, 'the tiny image was built');
      const broken = await breakImage(tiny, join(work, `broken-${how}`), how);
      assert.equal(broken.ref, `oci:${join(work, `broken-${how}`)}:latest`);
      assert.equal(broken.manifestDigest, tiny.manifestDigest);
      // inspect reads the manifest and config only
      assert.equal((await inspect(broken.ref)).Digest, tiny.manifestDigest);
      const copied = await skopeo(['copy', broken.ref, `oci:${join(work, `store-${how}`)}:x`]);
      t.diagnostic(`skopeo copy (${how}) exited with ${copied.code}: ${copied.stderr.trim()}`);
      assert.notEqual(copied.code, 0);
      const layer = tiny.layerDigests[0]!.slice('sha256:'.length);
      if (how === 'missing-layer') assert.match(copied.stderr, new RegExp(`${layer}: no such file or directory`));
      else assert.match(copied.stderr, /[Dd]igest did not match/);
      // the original is untouched
      assert.equal((await skopeo(['copy', tiny.ref, `oci:${join(work, `store-after-${how}`)}:x`])).code, 0);
    });
  }

  it('packs an image into an oci-archive that skopeo inspects and copies', async () => {
    const tiny = built.get('tiny');
    assert.ok(tiny, 'the tiny image was built');
    const file = join(work, 'archives', 'tiny.tar');
    const ref = await archiveImage(tiny, file);
    assert.equal(ref, `oci-archive:${file}:latest`);
    const listing = await ok('/usr/bin/tar', ['-tf', file]);
    assert.ok(listing.split('\n').includes('oci-layout'), 'oci-layout is at the archive top');
    assert.equal((await inspect(ref)).Digest, tiny.manifestDigest);
    const rootfs = await unpack(ref);
    assert.equal(readFileSync(join(rootfs, MARKER_PATH), 'utf8'), 'marker of tiny');
  });
});

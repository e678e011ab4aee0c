import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { enter, raw, session } from './browser.js';
import { archiveImage, breakImage, buildImage, MARKER_PATH, type BuiltImage } from './oci-image.js';
import { PROFILES, sandboxesAvailable, startSandboxServer, type SandboxServer } from './sandbox.js';

/**
 * Workspace images on the local runtime: OCI images the test builds from
 * this machine's Debian packages (test/oci-image.ts), imported with skopeo,
 * unpacked once with umoci into a root every workspace of the image shares,
 * and refused with a reason when broken or lacking what a workspace runs.
 */
const available = sandboxesAvailable();
const small = { cpu: { guarantee: '100m', limit: '1' }, memory: { guarantee: '128Mi', limit: '512Mi' }, storage: '32Mi' };

/** The Server-Sent Events of `path` until `until` says stop (or 60 s pass). */
async function events(t: SandboxServer, path: string, until: (e: { event: string; data: any }) => boolean, token = t.adminToken): Promise<Array<{ event: string; data: any }>> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 60_000);
  const seen: Array<{ event: string; data: any }> = [];
  try {
    const res = await fetch(`${t.url}${path}`, { headers: { authorization: `Bearer ${token}` }, signal: abort.signal });
    assert.equal(res.status, 200);
    let buffer = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += Buffer.from(chunk).toString();
      let sep: number;
      while ((sep = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, sep);
        buffer = buffer.slice(sep + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (data === undefined) continue;
        const e = { event, data: JSON.parse(data) };
        seen.push(e);
        if (until(e)) return seen;
      }
    }
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return seen;
}

/** Imports through the API, following the import's steps on the event stream to its end. */
async function importImage(t: SandboxServer, source: string, name: string): Promise<{ status: number; steps: Array<{ state: string; message: string }> }> {
  let started: Promise<{ status: number }> | undefined;
  const seen = await events(t, '/api/v1/images/events', (e) => {
    if (e.event === 'ready') started = t.call('POST', '/api/v1/images', { token: t.adminToken, body: { source, name } });
    return e.event === 'image' && e.data.name === name && (e.data.state === 'ready' || e.data.state === 'failed');
  });
  const r = await started!;
  return { status: r.status, steps: seen.filter((e) => e.event === 'image').map((e) => e.data) };
}

test('workspace images', { skip: available === true ? false : available }, async (suite) => {
  const dir = mkdtempSync(join(tmpdir(), 'atrium-images-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const lab = await buildImage(join(dir, 'lab'), { kind: 'jupyter', marker: 'lab image' });
  const python = await buildImage(join(dir, 'python'), { kind: 'python' });
  const tiny = await buildImage(join(dir, 'tiny'), { kind: 'tiny' });
  const t = await startSandboxServer({
    'runtime.imageGrace': '1s',
    profiles: [
      ...PROFILES,
      { name: 'imaged', displayName: 'Imaged', environment: 'jupyter', image: 'test/lab', ...small },
      { name: 'pyonly', displayName: 'Python only', environment: 'jupyter', image: 'test/python', ...small },
    ],
  });
  const alice = await t.user('alice');
  await t.addKey(alice, 'alice');
  const roots = () => readdirSync(join(t.dataDir, 'local', 'images', 'roots')).filter((f) => /^[0-9a-f]{64}$/.test(f));
  const hex = (i: BuiltImage) => i.manifestDigest.replace('sha256:', '');
  const image = async (name: string) => (await t.call('GET', `/api/v1/images/${encodeURIComponent(name)}`, { token: t.adminToken })).body;

  await suite.test('an admin imports an image from an OCI archive file, with its steps as events', async () => {
    const file = join(dir, 'lab.oci.tar');
    await archiveImage(lab, file);
    const notAdmin = await t.call('POST', '/api/v1/images', { token: alice, body: { source: file, name: 'test/lab' } });
    assert.equal(notAdmin.status, 403);
    const r = await importImage(t, file, 'test/lab');
    assert.equal(r.status, 201);
    assert.match(r.steps.map((s) => s.message).join('\n'), /copying layer 1/);
    assert.equal(r.steps.at(-1)!.state, 'ready', JSON.stringify(r.steps));
    const listed = await t.call('GET', '/api/v1/images', { token: t.adminToken });
    const found = listed.body.items.find((i: { name: string }) => i.name === 'test/lab');
    assert.equal(found.digest, lab.manifestDigest);
    assert.equal(found.source, `oci-archive:${file}`);
    assert.equal(found.unpacked, false, 'unpacked on first use');
    assert.deepEqual(found.usedBy, []);
    assert.equal((await importImage(t, python.ref, 'test/python')).steps.at(-1)!.state, 'ready');
  });

  await suite.test('bad sources are refused before anything is copied; broken images fail with the reason', async () => {
    for (const [source, why] of [['containers-storage:alpine', /transport .* not supported/], [join(dir, 'nope.tar'), /no such file or directory/], ['-v', /not an image reference/]] as const) {
      const r = await t.call('POST', '/api/v1/images', { token: t.adminToken, body: { source } });
      assert.equal(r.status, 400, source);
      assert.match(r.body.error.message, why);
    }
    assert.equal((await t.call('POST', '/api/v1/images', { token: t.adminToken, body: { source: tiny.ref, name: 'Bad Name' } })).status, 400);
    const missing = await importImage(t, (await breakImage(tiny, join(dir, 'missing'), 'missing-layer')).ref, 'broken/missing');
    assert.equal(missing.steps.at(-1)!.state, 'failed');
    assert.match(missing.steps.at(-1)!.message, /skopeo could not copy .*: reading blob sha256:[0-9a-f]{64}: .*no such file or directory/);
    const wrong = await importImage(t, (await breakImage(tiny, join(dir, 'wrong'), 'wrong-digest')).ref, 'broken/digest');
    assert.equal(wrong.steps.at(-1)!.state, 'failed');
    assert.match(wrong.steps.at(-1)!.message, /Digest did not match, expected sha256:[0-9a-f]{64}, got sha256:[0-9a-f]{64}/);
    const names = (await t.call('GET', '/api/v1/images', { token: t.adminToken })).body.items.map((i: { name: string }) => i.name);
    assert.deepEqual(names, ['test/lab', 'test/python'], 'a failed import leaves no image');
  });

  await suite.test("an image without what the environment runs fails the start with that reason", async () => {
    assert.equal((await t.call('POST', '/api/v1/teams/alice/workspaces', { token: alice, body: { name: 'nojupyter', profile: 'pyonly' } })).status, 201);
    const ws = await t.waitPhase(alice, 'alice/nojupyter', ['failed', 'running']);
    assert.equal(ws.phase, 'failed');
    assert.match(ws.reason, /image test\/python has no jupyter-notebook on its PATH \(the jupyter environment runs it\)/);
    assert.equal((await t.call('DELETE', '/api/v1/teams/alice/workspaces/nojupyter?purge=true', { token: alice })).status, 204);
  });

  await suite.test('two workspaces start from it, the second on the root the first unpacked, and Jupyter from the image answers through the proxy', async () => {
    assert.equal((await t.call('POST', '/api/v1/teams/alice/workspaces', { token: alice, body: { name: 'one', profile: 'imaged' } })).status, 201);
    const first = await t.waitPhase(alice, 'alice/one', ['running', 'failed']);
    assert.equal(first.phase, 'running', first.reason);
    assert.equal(first.image, 'test/lab');
    assert.equal((await t.call('POST', '/api/v1/teams/alice/workspaces', { token: alice, body: { name: 'two', profile: 'imaged' } })).status, 201);
    const second = await t.waitPhase(alice, 'alice/two', ['running', 'failed']);
    assert.equal(second.phase, 'running', second.reason);
    // the first start unpacked the image and said so; the second did not
    const steps = async (ws: string) => (await events(t, `/api/v1/teams/alice/workspaces/${ws}/events`, (e) => e.data.type === 'phase' && e.data.data.phase === 'running', alice)).map((e) => e.data.message as string);
    assert.ok((await steps('one')).some((m) => m.startsWith('unpacking image test/lab')));
    assert.ok(!(await steps('two')).some((m) => m.startsWith('unpacking image')));
    assert.deepEqual(roots(), [hex(lab)], 'one root, by the manifest digest');
    // the same file, by device and inode, in both sandboxes: one shared, read-only root
    const look = `stat -c %d:%i ${MARKER_PATH}; cat ${MARKER_PATH}; echo; id -un; test -e /usr/bin/gcc && echo host-usr || echo image-usr; m=$(touch /usr/x 2>&1); echo "\${m##*: }"; head -c 3 "$ATRIUM_TOKEN_FILE"; echo " $ATRIUM_TOKEN_FILE"`;
    const a = await t.sh('alice/one', look);
    const b = await t.sh('alice/two', look);
    assert.equal(a.code, 0, a.stderr);
    const [inodeA, marker, user, usr, write, token] = a.stdout.trim().split('\n');
    assert.equal(inodeA, b.stdout.trim().split('\n')[0]);
    assert.equal(marker, 'lab image');
    assert.equal(user, 'jovyan');
    assert.equal(usr, 'image-usr', "the image's /usr, not the host's (which has gcc)");
    assert.equal(write, 'Read-only file system');
    // the workload token where the image's /var/run leads (Debian's: a link to /run)
    assert.equal(token, 'eyJ /var/run/secrets/atrium/token');
    const cookie = await session(t, 'alice');
    const { appCookie, host } = await enter(t, cookie, 'alice', 'one');
    const status = await raw(t, '/w/alice/one/api/status', { host, headers: { cookie: appCookie } });
    assert.equal(status.status, 200, status.body);
    assert.ok('kernels' in JSON.parse(status.body));
    const shown = await image('test/lab');
    assert.equal(shown.unpacked, true);
    assert.deepEqual([...shown.usedBy].sort(), ['alice/one', 'alice/two']);
  });

  await suite.test('an image in use is not removed; once unused it is, with its root and its blobs', async () => {
    const refused = await t.call('DELETE', `/api/v1/images/${encodeURIComponent('test/lab')}`, { token: t.adminToken });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'image_in_use');
    assert.match(refused.body.error.message, /in use by 2 workspaces/);
    for (const ws of ['one', 'two']) assert.equal((await t.call('DELETE', `/api/v1/teams/alice/workspaces/${ws}?purge=true`, { token: alice })).status, 204);
    let status = 0;
    for (let i = 0; i < 300 && status !== 204; i++) {
      status = (await t.call('DELETE', `/api/v1/images/${encodeURIComponent('test/lab')}`, { token: t.adminToken })).status;
      if (status !== 204) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(status, 204);
    assert.deepEqual(roots(), []);
    const blobs = readdirSync(join(t.dataDir, 'local', 'images', 'store', 'blobs', 'sha256'));
    assert.ok(!blobs.includes(lab.layerDigests[0]!.replace('sha256:', '')), 'its layer is collected');
    assert.ok(blobs.includes(python.layerDigests[0]!.replace('sha256:', '')), "another image's stays");
    assert.equal((await t.call('GET', `/api/v1/images/${encodeURIComponent('test/lab')}`, { token: t.adminToken })).status, 404);
  });

  await suite.test('a root no workspace uses is removed after runtime.imageGrace; the next start unpacks it again', async () => {
    assert.equal((await importImage(t, lab.ref, 'test/lab')).steps.at(-1)!.state, 'ready');
    assert.equal((await t.call('POST', '/api/v1/teams/alice/workspaces', { token: alice, body: { name: 'three', profile: 'imaged' } })).status, 201);
    assert.equal((await t.waitPhase(alice, 'alice/three', ['running', 'failed'])).phase, 'running');
    assert.equal((await t.call('DELETE', '/api/v1/teams/alice/workspaces/three?purge=true', { token: alice })).status, 204);
    // collection runs every 10 s at most here; a busy machine gets several rounds of it
    for (let i = 0; i < 900 && existsSync(join(t.dataDir, 'local', 'images', 'roots', hex(lab))); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(!existsSync(join(t.dataDir, 'local', 'images', 'roots', hex(lab))));
    assert.equal((await image('test/lab')).unpacked, false, 'the image itself stays');
  });
});

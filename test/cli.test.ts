import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

/**
 * End to end through the built artefacts the README uses: `atrium serve` as a
 * process with its embedded defaults, and the CLI against it.
 */
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'atrium-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const env = { ...process.env, ATRIUM_CREDENTIALS: join(dir, 'credentials.json'), ATRIUM_TOKEN: '', ATRIUM_URL: '' };
delete (env as Record<string, string | undefined>).ATRIUM_TOKEN;
delete (env as Record<string, string | undefined>).ATRIUM_URL;

function atrium(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.end(input ?? '');
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

async function serve(dataDir: string, moreEnv: Record<string, string> = {}): Promise<{ child: ChildProcess; output: string; url: string }> {
  const child = spawn(process.execPath, [MAIN, 'serve', '--port', '0', '--ssh-port', '0', '--data-dir', dataDir, '--runtime', 'none'], { env: { ...env, ATRIUM_LOG_LEVEL: 'warn', ...moreEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  for (const deadline = Date.now() + 60_000; Date.now() < deadline && !/\nNext:/.test(output) && child.exitCode === null; ) await new Promise((r) => setTimeout(r, 50));
  const url = /Atrium is running at (\S+)/.exec(output)?.[1];
  assert.ok(url, `serve did not start:\n${output}`);
  return { child, output, url };
}

describe('CLI against `atrium serve`', () => {
  test('first start prints the admin, who logs in and runs the workspace lifecycle; exit codes tell failures apart', async () => {
    const data = join(dir, 'data');
    const first = await serve(data);
    after(() => first.child.kill('SIGKILL'));
    assert.match(first.output, /created the platform admin "admin"/);
    const password = /password: (\S+)/.exec(first.output)![1]!;
    assert.equal(statSync(data).mode & 0o777, 0o700);

    assert.equal((await atrium(['whoami'])).code, 3, 'not signed in');
    const bad = await atrium(['login', first.url, '-u', 'admin', '--password-stdin'], 'wrong-password\n');
    assert.equal(bad.code, 3);
    assert.match(bad.stderr, /unauthenticated: wrong username or password/);
    const login = await atrium(['login', first.url, '-u', 'admin', '--password-stdin'], `${password}\n`);
    assert.equal(login.code, 0, login.stderr);
    assert.equal(statSync(join(dir, 'credentials.json')).mode & 0o777, 0o600);
    assert.match((await atrium(['whoami'])).stdout, /admin \(platform admin\)/);

    const created = await atrium(['users', 'create', 'bob', '--password-stdin'], 'bob-password-1\n');
    assert.equal(created.code, 0, created.stderr);
    assert.equal((await atrium(['teams', 'create', 'ml', '--owner', 'admin', '--workspaces', '2', '--cpu', '1'])).code, 0);
    assert.equal((await atrium(['teams', 'members', 'add', 'ml', 'bob', '--role', 'editor'])).code, 0);
    const members = await atrium(['teams', 'members', 'ls', 'ml', '--json']);
    assert.deepEqual(JSON.parse(members.stdout).map((m: { username: string; role: string }) => [m.username, m.role]), [['admin', 'owner'], ['bob', 'editor']]);

    const profiles = await atrium(['profiles', 'ls']);
    assert.match(profiles.stdout, /^PROFILE\s+NAME\s+ENV\s+CPU\s+MEMORY\s+GPU\s+STORAGE\s+TIER\s+EGRESS\s+IDLE\s+SSH-AGENT$/m);
    assert.match(profiles.stdout, /small\s+Small shell\s+shell\s+100m\/250m\s+128Mi\/256Mi/);

    const ws = await atrium(['ws', 'create', 'ml/lab', '--profile', 'small', '--detach']);
    assert.equal(ws.code, 0, ws.stderr);
    assert.match(ws.stdout, /Created workspace ml\/lab \(small\)\.\nDesired running, phase pending/);
    assert.equal((await atrium(['ws', 'create', 'mine', '-p', 'small', '--no-start'])).code, 0, 'a bare name means the personal team');
    const list = JSON.parse((await atrium(['ws', 'ls', '--json'])).stdout) as Array<{ team: string; name: string; phase: string }>;
    assert.deepEqual(list.map((w) => `${w.team}/${w.name}`), ['admin/mine', 'ml/lab']);
    assert.ok(list.every((w) => w.phase === 'pending'));
    assert.match((await atrium(['ws', 'show', 'ml.lab'])).stdout, /phase:\s+pending/);
    assert.match((await atrium(['ws', 'stop', 'atrium.ml.lab', '--detach'])).stdout, /desired stopped/);
    assert.match((await atrium(['ws', 'start', 'ml/lab', '-d'])).stdout, /desired running/);

    assert.equal((await atrium(['ws', 'create', 'ml/second', '--profile', 'small', '--no-start'])).code, 0);
    const over = await atrium(['ws', 'create', 'ml/third', '--profile', 'small', '--detach']);
    assert.equal(over.code, 1);
    assert.match(over.stderr, /quota_exceeded: team ml workspaces: 1 requested, 0 of 2 left/);
    const missing = await atrium(['ws', 'show', 'ml/nope']);
    assert.equal(missing.code, 4);
    assert.match(missing.stderr, /not_found: workspace ml\/nope not found/);
    assert.equal((await atrium(['ws', 'show', 'Not/A/Ref'])).code, 2);
    assert.equal((await atrium(['ws', 'create', 'x1'])).code, 2, 'missing --profile is a usage error');
    assert.equal((await atrium(['ws', 'rm', 'ml/lab'])).code, 2, 'deleting needs --yes without a terminal');
    assert.equal((await atrium(['ws', 'rm', 'ml/lab', '--yes'])).code, 0);
    const quota = await atrium(['teams', 'quota', 'ml', '--memory', '3Gi', '--gpu', 'a100=2']);
    assert.match(quota.stdout, /memory\s+3Gi/);
    assert.match(quota.stdout, /gpu a100\s+2/);
    assert.match((await atrium(['teams', 'show', 'ml'])).stdout, /workspaces\s+2\s+1/);

    assert.equal((await atrium(['password', '--password-stdin'], `${password}\nnew-admin-password\n`)).code, 0);
    const token = await atrium(['tokens', 'create', 'ci', '--expires-in', '1d']);
    assert.match(token.stdout, /^atr_\S+\n$/);
    assert.equal((await atrium(['users', 'disable', 'bob'])).code, 0);
    assert.match((await atrium(['users', 'ls'])).stdout, /bob\s+disabled/);

    assert.equal((await atrium(['logout'])).code, 0);
    assert.equal((await atrium(['whoami'])).code, 3);

    // a restart on the same data keeps everything and creates no second admin
    first.child.kill('SIGTERM');
    await new Promise((r) => first.child.once('close', r));
    const second = await serve(data);
    after(() => second.child.kill('SIGKILL'));
    assert.doesNotMatch(second.output, /created the platform admin/);
    assert.equal((await atrium(['login', second.url, '-u', 'admin', '--password-stdin'], 'new-admin-password\n')).code, 0);
    assert.match((await atrium(['ws', 'ls'])).stdout, /admin\/mine/);
  });

  test('render kubernetes prints what Atrium applies to a cluster, which it never contacts; Secrets\' data only with --secrets', async () => {
    // the cluster's kubeconfig does not exist and the server runs no runtime: rendering needs neither
    const server = await serve(join(dir, 'render'), { ATRIUM_KUBERNETES_CLUSTERS: '[{name: east, kubeconfig: /nonexistent}]' });
    after(() => server.child.kill('SIGKILL'));
    const password = /password: (\S+)/.exec(server.output)![1]!;
    assert.equal((await atrium(['login', server.url, '-u', 'admin', '--password-stdin'], `${password}\n`)).code, 0);
    assert.equal((await atrium(['teams', 'create', 'ml', '--owner', 'admin'])).code, 0);
    assert.equal((await atrium(['ws', 'create', 'ml/lab', '--profile', 'small', '--detach'])).code, 0);
    assert.equal((await atrium(['ws', 'create', 'ml/idle', '--profile', 'small', '--no-start'])).code, 0);

    const help = await atrium(['render', 'kubernetes', '--help']);
    assert.match(help.stdout, /Secrets come without their data/);
    assert.match(help.stdout, /--secrets/);

    const yaml = await atrium(['render', 'kubernetes', '--cluster', 'east']);
    assert.equal(yaml.code, 0, yaml.stderr);
    assert.equal(yaml.stderr, '');
    const objects = parseAllDocuments(yaml.stdout).map((d) => d.toJS() as { kind: string; metadata: { name: string; namespace?: string }; spec?: any; stringData?: unknown });
    assert.equal(objects[0]!.kind, 'RuntimeClass');
    const sts = (name: string) => objects.find((o) => o.kind === 'StatefulSet' && o.metadata.name === name)!;
    assert.equal(sts('ws-lab').spec.replicas, 1);
    assert.equal(sts('ws-idle').spec.replicas, 0);
    const secret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === 'ws-lab-access')!;
    assert.equal(secret.stringData, undefined);
    assert.doesNotMatch(yaml.stdout, /PRIVATE KEY/);

    const json = await atrium(['render', 'kubernetes', '--cluster', 'east', '-o', 'json']);
    assert.equal(json.code, 0, json.stderr);
    const list = JSON.parse(json.stdout);
    assert.equal(list.kind, 'List');
    assert.deepEqual(list.items, objects);
    assert.match((await atrium(['render', 'kubernetes', '--cluster', 'east', '--secrets'])).stdout, /BEGIN OPENSSH PRIVATE KEY/);
    const team = parseAllDocuments((await atrium(['render', 'kubernetes', '--cluster', 'east', '--team', 'ml'])).stdout).map((d) => d.toJS());
    assert.ok(team.every((o: any) => o.metadata.name === 'atrium-ml' || o.metadata.namespace === 'atrium-ml'));

    // failures: a message on stderr, nothing on stdout, and the exit code of their kind
    const unnamed = await atrium(['render', 'kubernetes']);
    assert.equal(unnamed.code, 2);
    assert.match(unnamed.stderr, /runs workspaces on this machine, not on Kubernetes; name a cluster .* with --cluster/);
    const unknown = await atrium(['render', 'kubernetes', '--cluster', 'west']);
    assert.equal(unknown.code, 4);
    assert.equal(unknown.stdout, '');
    assert.match(unknown.stderr, /not_found: cluster west not found; Kubernetes clusters: east/);
    assert.equal((await atrium(['render', 'kubernetes', '--cluster', 'east', '-o', 'xml'])).code, 2);
    assert.equal((await atrium(['users', 'create', 'bob', '--password-stdin'], 'bob-password-1\n')).code, 0);
    assert.equal((await atrium(['login', server.url, '-u', 'bob', '--password-stdin'], 'bob-password-1\n')).code, 0);
    const refused = await atrium(['render', 'kubernetes', '--cluster', 'east']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /forbidden: only platform admins may do this/);
  });

  test('a bad configuration fails at start with the key and where it came from', async () => {
    const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [MAIN, 'serve', '--port', 'eighty', '--data-dir', join(dir, 'bad')], { env });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => resolve({ code: code ?? -1, stderr }));
    });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /configuration error: config\.listen\.port: must be integer \(from flag --port\)/);
  });
});

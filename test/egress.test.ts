import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { egressNames } from '../src/runtime/index.js';
import { startWorld, WORLD, type World } from './egress-world.js';
import { waitUntil } from './wait.js';
import { AGENT, PROFILES, run, sandboxesAvailable, serveProcess, startSandboxServer, uidBase, type SandboxServer } from './sandbox.js';

/**
 * Public egress on the local runtime, against a stand-in internet in a
 * network namespace the test makes (test/egress-world.ts): a public-looking
 * host with a web page and a package index, private, carrier-grade NAT and
 * metadata hosts behind the same route, and a DNS server. Nothing leaves
 * the machine. Commands run in the workspaces over SSH, as their user.
 */
const available = sandboxesAvailable();
const SUBNET = `10.213.${process.pid % 250}.0/24`;
/** MinIO, a real STS for workload tokens (scripts/minio-build.sh; scripts/test.sh sets ATRIUM_MINIO); in CI its absence is an error */
const minio = process.env.ATRIUM_MINIO || undefined;
if (!minio && process.env.CI && available === true) throw new Error('ATRIUM_MINIO is not set; run the suite through scripts/test.sh, which builds MinIO');
let world: World;
let t: SandboxServer;
/** a service on every host address, as the host's own services would be */
const hostService = createTcpServer((s) => s.end('host service\n'));

/**
 * Connects to every address:port from the workspace at once, and says what
 * happened to each: connected, refused, or dropped (no answer within 2 s,
 * room enough for a connection that works on a busy machine).
 */
async function reach(ws: string, targets: Array<[string, number]>): Promise<Record<string, string>> {
  const script = `
import socket, sys, threading
results = {}
def attempt(target):
    host, port = target.rsplit(':', 1)
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((host, int(port)))
        results[target] = 'connected'
    except socket.timeout:
        results[target] = 'dropped'
    except OSError as e:
        results[target] = 'refused' if e.errno == 111 else 'unreachable:%d' % e.errno
    finally:
        s.close()
threads = [threading.Thread(target=attempt, args=(t,)) for t in sys.argv[1:]]
for t in threads: t.start()
for t in threads: t.join()
for t in sys.argv[1:]: print(t, results[t])
`;
  const r = await t.sh(ws, `python3 -c ${shellQuote(script)} ${targets.map(([h, p]) => `${h}:${p}`).join(' ')}`, 60_000);
  assert.equal(r.code, 0, r.stderr);
  return Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(' ') as [string, string]));
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

before(async () => {
  if (available !== true) return;
  world = await startWorld();
  await new Promise<void>((r) => hostService.listen(0, '0.0.0.0', r));
});
after(async () => {
  hostService.close();
  await world?.close();
});

test('public egress: out to public addresses by the uplink, never to private ones, the host or another workspace', { skip: available === true ? false : available }, async (suite) => {
  const small = { environment: 'shell', cpu: { guarantee: '50m', limit: '500m' }, memory: { guarantee: '32Mi', limit: '128Mi' }, storage: '16Mi' };
  const extra = [
    // a team's data lake only: the 10.99/16 range (and metadata, which stays dropped whatever a profile says)
    { name: 'lake', displayName: 'Lake', egress: { allow: ['10.99.0.0/16', '169.254.0.0/16'] }, ...small },
    { name: 'online-lake', displayName: 'Online and lake', egress: { public: true, allow: ['172.16.5.0/24'] }, ...small },
  ];
  t = await startSandboxServer({
    profiles: [...PROFILES, ...extra],
    'runtime.egress': { subnet: SUBNET, uplink: world.uplink, gateway: WORLD.gateway, dns: [WORLD.gateway] },
    // on the uplink's host address, where a service in the world (MinIO's STS below) reads the workload identity issuer's keys
    'listen.host': WORLD.hostAddress,
    'workloadIdentity.audiences': ['minio-sts'],
  });
  const alice = await t.user('alice');
  await t.addKey(alice, 'alice');
  for (const [name, profile] of [['out', 'online'], ['peer', 'online'], ['closed', 'tiny'], ['lake', 'lake'], ['both', 'online-lake']] as const) {
    const r = await t.call('POST', '/api/v1/teams/alice/workspaces', { token: alice, body: { name, profile } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  for (const name of ['out', 'peer', 'closed', 'lake', 'both']) await t.waitPhase(alice, `alice/${name}`, ['running']);

  await suite.test('pip installs a wheel from the test index and curl fetches the public host, by name through the platform\'s resolver', async () => {
    const page = await t.sh('alice/out', `curl -sS -m 5 http://${WORLD.public}/ && getent ahostsv4 files.test | head -1 && curl -sS -m 5 http://files.test/`);
    assert.equal(page.code, 0, page.stderr);
    assert.equal(page.stdout.split('\n')[0], WORLD.page);
    assert.match(page.stdout, new RegExp(`^${WORLD.public.replace(/\./g, '\\.')}\\s`, 'm'));
    assert.equal(page.stdout.trim().split('\n').at(-1), WORLD.page);
    const pip = await t.sh('alice/out', `python3 -m pip install -q --user --break-system-packages --no-cache-dir --index-url http://files.test/simple/ --trusted-host files.test hello-atrium && python3 -c 'import hello_atrium; print(hello_atrium.GREETING)'`, 120_000);
    assert.equal(pip.code, 0, pip.stderr);
    assert.equal(pip.stdout.trim().split('\n').at(-1), WORLD.greeting);
  });

  await suite.test('private, carrier-grade NAT, link-local and metadata hosts are dropped, though the same route leads to them', async () => {
    const got = await reach('alice/out', [[WORLD.public, 80], ...Object.values(WORLD.private).map((a): [string, number] => [a, 80])]);
    assert.equal(got[`${WORLD.public}:80`], 'connected', 'the public host, for comparison');
    for (const [what, address] of Object.entries(WORLD.private)) assert.equal(got[`${address}:80`], 'dropped', `${what} (${address})`);
  });

  await suite.test('the host\'s own addresses, the control plane and the other workspace are unreachable', async () => {
    const port = (hostService.address() as AddressInfo).port;
    const atriumPort = Number(new URL(t.url).port);
    const hostAddresses = Object.values(networkInterfaces()).flat().filter((a) => a && a.family === 'IPv4' && !a.internal).map((a) => a!.address);
    assert.ok(hostAddresses.includes(WORLD.hostAddress));
    const peerAddress = (await t.sh('alice/peer', "ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1")).stdout.trim();
    assert.match(peerAddress, /^10\.213\./);
    const listening = await t.sh('alice/peer', 'nohup python3 -m http.server 9000 --bind 0.0.0.0 >/dev/null 2>&1 & sleep 1; echo started');
    assert.equal(listening.stdout.trim(), 'started');
    // the peer listens: the host itself reaches it
    assert.equal((await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '3', `http://${peerAddress}:9000/`])).stdout, '200');
    const targets: Array<[string, number]> = [...hostAddresses.flatMap((a): Array<[string, number]> => [[a, port], [a, atriumPort], [a, 22]]), [peerAddress, 9000]];
    const resolver = `10.213.${process.pid % 250}.1`;
    targets.push([resolver, atriumPort], [resolver, port]);
    const got = await reach('alice/out', targets);
    for (const [address, p] of targets) assert.match(got[`${address}:${p}`] ?? 'missing', /^(dropped|refused)$/, `${address}:${p}`);
  });

  await suite.test('allowed ranges: a data-lake profile reaches its range and nothing public; with public too, both; metadata never', async () => {
    const all: Array<[string, number]> = [[WORLD.public, 80], ...Object.values(WORLD.private).map((a): [string, number] => [a, 80])];
    const lake = await reach('alice/lake', all);
    assert.equal(lake[`${WORLD.private['10/8']}:80`], 'connected', 'its data lake');
    for (const [address] of all.filter(([a]) => a !== WORLD.private['10/8'])) assert.equal(lake[`${address}:80`], 'dropped', `lake → ${address}`);
    const both = await reach('alice/both', all);
    assert.equal(both[`${WORLD.public}:80`], 'connected', 'public');
    assert.equal(both[`${WORLD.private['172.16/12']}:80`], 'connected', 'its allowed range');
    for (const [address] of all.filter(([a]) => a !== WORLD.public && a !== WORLD.private['172.16/12'])) assert.equal(both[`${address}:80`], 'dropped', `both → ${address}`);
    const profiles = (await t.call('GET', '/api/v1/profiles', { token: alice })).body.items as Array<{ name: string; egress: unknown }>;
    assert.deepEqual(profiles.find((p) => p.name === 'online-lake')?.egress, { public: true, allow: ['172.16.5.0/24'] });
  });

  await suite.test("a workspace exchanges its workload token at MinIO's STS for S3 credentials of its team's policy, and reads the lake", { skip: minio === undefined ? 'needs MinIO (scripts/minio-build.sh)' : false }, async () => {
    const lake = WORLD.private['10/8'];
    const endpoint = `http://${lake}:9100`;
    const data = mkdtempSync(join(tmpdir(), 'atrium-minio-'));
    after(() => rmSync(data, { recursive: true, force: true }));
    // MinIO in the world's data-lake range, trusting Atrium's issuer: the policy is the token's `team` claim
    const server = spawn('ip', ['netns', 'exec', world.ns, minio!, 'server', data, '--address', `${lake}:9100`, '--console-address', `${lake}:9101`], {
      stdio: 'ignore',
      env: {
        ...process.env, MINIO_ROOT_USER: 'lake-admin', MINIO_ROOT_PASSWORD: 'lake-admin-secret', MINIO_BROWSER: 'off', MINIO_UPDATE: 'off',
        MINIO_IDENTITY_OPENID_CONFIG_URL: `${t.url}/.well-known/openid-configuration`, MINIO_IDENTITY_OPENID_CLIENT_ID: 'minio-sts', MINIO_IDENTITY_OPENID_CLAIM_NAME: 'team',
      },
    });
    after(() => server.kill('SIGKILL'));
    const admin = (args: string[], body?: string) => {
      const hash = createHash('sha256').update(body ?? '').digest('hex');
      return run('ip', ['netns', 'exec', world.ns, 'curl', '-sS', '-m', '10', '-w', '\n%{http_code}', '--aws-sigv4', 'aws:amz:us-east-1:s3', '--user', 'lake-admin:lake-admin-secret', '-H', `x-amz-content-sha256: ${hash}`, ...(body === undefined ? [] : ['--data-binary', body]), ...args]);
    };
    await waitUntil('MinIO to answer', async () => (await admin([`${endpoint}/minio/health/ready`])).stdout.endsWith('200'), { timeoutMs: 60_000, everyMs: 250 });
    assert.match((await admin(['-X', 'PUT', `${endpoint}/lake`])).stdout, /200$/);
    assert.match((await admin(['-X', 'PUT', `${endpoint}/lake/readme.txt`], 'what the lake holds')).stdout, /200$/);
    const policy = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['s3:GetObject'], Resource: ['arn:aws:s3:::lake/*'] }] });
    assert.match((await admin(['-X', 'PUT', `${endpoint}/minio/admin/v3/add-canned-policy?name=alice`], policy)).stdout, /200$/);

    const exchange = (token: string) => `curl -sS -m 10 -X POST ${endpoint}/ -d Action=AssumeRoleWithWebIdentity -d Version=2011-06-15 -d DurationSeconds=900 --data-urlencode "WebIdentityToken=${token}"`;
    const field = (name: string) => `sed -n 's:.*<${name}>\\([^<]*\\)</${name}>.*:\\1:p'`;
    const script = [
      'T=$(cat "$ATRIUM_TOKEN_FILE")',
      // MinIO reads the issuer's keys once it can reach it: until then STS says it is initializing
      `for i in $(seq 1 100); do R=$(${exchange('$T')}); case "$R" in *AccessKeyId*) break;; esac; sleep 0.3; done`,
      `ak=$(printf %s "$R" | ${field('AccessKeyId')}); sk=$(printf %s "$R" | ${field('SecretAccessKey')}); st=$(printf %s "$R" | ${field('SessionToken')})`,
      'test -n "$ak" || { echo "no credentials: $R"; exit 1; }',
      `curl -sS -m 10 --aws-sigv4 aws:amz:us-east-1:s3 --user "$ak:$sk" -H "x-amz-security-token: $st" ${endpoint}/lake/readme.txt; echo`,
      // the team's policy reads, nothing more
      `curl -sS -m 10 -o /dev/null -w '%{http_code}\\n' --aws-sigv4 aws:amz:us-east-1:s3 --user "$ak:$sk" -H "x-amz-security-token: $st" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -X PUT --data-binary x ${endpoint}/lake/mine.txt`,
      // a token changed in the workspace is refused
      `${exchange('${T}x')} | grep -o 'verification error' | head -1`,
    ].join('\n');
    const r = await t.sh('alice/lake', script, 90_000);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.deepEqual(r.stdout.trim().split('\n'), ['what the lake holds', '403', 'verification error']);
  });

  await suite.test('a workspace without egress reaches nothing at all', async () => {
    const got = await reach('alice/closed', [[WORLD.public, 80], [WORLD.gateway, 53]]);
    assert.match(got[`${WORLD.public}:80`]!, /^unreachable/);
    assert.equal((await t.sh('alice/closed', 'cat /etc/resolv.conf')).stdout, '');
  });

  await suite.test('inside the sandbox, routes and rules cannot be changed', async () => {
    const attempts = ['ip route add 192.0.2.0/24 dev eth0', 'ip link set eth0 down', 'ip addr add 10.213.0.99/32 dev eth0', 'nft list ruleset', 'nft add table inet mine'];
    const r = await t.sh('alice/out', attempts.map((c) => `${c} >/dev/null 2>&1; echo "$?"`).join('; '));
    const codes = r.stdout.trim().split('\n');
    assert.equal(codes.length, attempts.length, r.stderr);
    attempts.forEach((c, i) => assert.notEqual(codes[i], '0', `${c} succeeded`));
    const why = await t.sh('alice/out', 'ip route add 192.0.2.0/24 dev eth0');
    assert.match(why.stderr, /Operation not permitted/);
    const still = await reach('alice/out', [[WORLD.public, 80]]);
    assert.equal(still[`${WORLD.public}:80`], 'connected');
  });

  await suite.test('stopping a workspace removes its link and namespace; the rules name no other', async () => {
    const id = await t.wsId('alice/peer');
    const before = (await run('ip', ['netns', 'list'])).stdout;
    assert.ok(before.includes(id), 'a namespace of its own while it runs');
    const stop = await t.call('POST', '/api/v1/teams/alice/workspaces/peer/stop', { token: alice });
    assert.equal(stop.status, 200, JSON.stringify(stop.body));
    await t.waitPhase(alice, 'alice/peer', ['stopped']);
    assert.ok(!(await run('ip', ['netns', 'list'])).stdout.includes(id), 'its namespace is gone');
    const outId = await t.wsId('alice/out');
    assert.ok((await run('ip', ['netns', 'list'])).stdout.includes(outId), 'the running one keeps its own');
  });
});


test('after kill -9 of the control plane, the links and namespaces are exactly those of running workspaces', { skip: available === true ? false : available, timeout: 600_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'atrium-egress-crash-'));
  const names = egressNames(join(dataDir, 'local'));
  const config = join(dataDir, 'atrium.yaml');
  const subnet = `10.212.${process.pid % 250}.0/24`;
  writeFileSync(config, JSON.stringify({ profiles: PROFILES, runtime: { agent: AGENT, stopGrace: '2s', reserve: { cpu: '0', memory: '0' }, uidBase: uidBase(), egress: { subnet, uplink: world.uplink, gateway: WORLD.gateway, dns: [WORLD.gateway] } }, logLevel: 'info', logFormat: 'json' }));
  const atrium = serveProcess({ config, dataDir });
  after(async () => {
    await atrium.cleanUp();
    // what egress left on the host, were the test to fail before the workspaces went
    for (const ns of (await run('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(names.netnsPrefix))) await run('ip', ['netns', 'del', ns]);
    await run('nft', ['delete', 'table', 'inet', names.table]);
    for (const p of [names.rulePriority - 1, names.rulePriority]) await run('ip', ['rule', 'del', 'priority', String(p)]);
    await run('ip', ['route', 'flush', 'table', String(names.routeTable)]);
    await run('ip', ['addr', 'del', `${subnet.replace(/0\/24$/, '1')}/32`, 'dev', 'lo']);
  });
  const { start, call } = atrium;

  await start();
  const token = await atrium.login();
  await call('PATCH', '/api/v1/teams/admin/quota', token, { workspaces: 20, cpu: '100', memory: '100Gi', storage: '100Gi' });
  const wsNames = ['e1', 'e2', 'e3', 'e4', 'e5'];
  for (const name of wsNames) assert.equal((await call('POST', '/api/v1/teams/admin/workspaces', token, { name, profile: 'online', start: name !== 'e5' })).status, 201);

  for (let round = 0; round < 4; round++) {
    // flip about half of them at once, then kill the control plane while it works
    await atrium.flipAndKill(token, wsNames, 950);
    if (round === 3) {
      // what a crash at the worst moment leaves: a namespace and a link whose workspace never got a sandbox
      await run('ip', ['netns', 'add', names.netns('w_ghost')]);
      await run('ip', ['link', 'add', `${names.vethPrefix}0000000000`, 'type', 'veth', 'peer', 'name', `${names.vethPrefix}0000000001`]);
    }
    await start();
  }

  const appLog = (id: string) => { try { return readFileSync(join(dataDir, 'local', 'run', id, 'app.log'), 'utf8').slice(-1500); } catch { return 'no log'; } };
  // the last control plane settled, its sandboxes agreeing with its phases
  const list = await atrium.settled(token);
  const events = async (name: string) => {
    const db = new Database(join(dataDir, 'atrium.db'), { readonly: true });
    try {
      return (db.prepare('select e.* from events e join workspaces w on w.id = e.workspace_id where w.name = ? order by e.id').all(name) as Array<Record<string, unknown>>).map((e) => JSON.stringify(e)).join('\n');
    } finally {
      db.close();
    }
  };
  for (const w of list) if (w.phase !== (w.desired === 'running' ? 'running' : 'stopped')) assert.fail(`${w.name} ${w.desired}/${w.phase} ${w.reason ?? ''}\napp log: ${appLog(w.id)}\nevents:\n${await events(w.name)}\ncontrol plane: ${atrium.output.split('\n').filter((l) => !/^\s|Atrium is running|^$/.test(l)).slice(-60).join('\n')}`);
  assert.deepEqual(list.filter((w) => w.phase === 'failed').map((w) => `${w.name}: ${w.reason}`), [], 'no workspace failed');
  const running = list.filter((w) => w.phase === 'running').map((w) => w.id as string);

  const links = (JSON.parse((await run('ip', ['-j', 'link', 'show'])).stdout) as Array<{ ifname: string }>).map((l) => l.ifname).filter((n) => n.startsWith(names.vethPrefix));
  const missing = running.filter((id) => !links.includes(names.veth(id)));
  const history = missing.map((id) => {
    const meta = existsSync(join(dataDir, 'local', 'run', id, 'meta.json')) ? readFileSync(join(dataDir, 'local', 'run', id, 'meta.json'), 'utf8') : 'no meta';
    const lines = atrium.output.split('\n').filter((l) => l.includes(id) || l.includes('running at'));
    return `${id}: meta ${meta}; namespace ${existsSync(`/run/netns/${names.netns(id)}`)}; app log ${appLog(id)}; control plane:\n${lines.join('\n')}`;
  });
  assert.deepEqual(links.sort(), running.map(names.veth).sort(), `links: one per running workspace, nothing else ${history.join('\n')}`);
  const namespaces = (await run('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(names.netnsPrefix));
  assert.deepEqual(namespaces.sort(), running.map(names.netns).sort(), 'namespaces: one per running workspace, nothing else');
  const routes = (JSON.parse((await run('ip', ['-j', '-4', 'route', 'show'])).stdout) as Array<{ dst: string; dev: string }>).filter((r) => r.dev.startsWith(names.vethPrefix));
  assert.deepEqual(routes.map((r) => r.dev).sort(), running.map(names.veth).sort(), 'a host route per running workspace');
  assert.match((await run('nft', ['list', 'table', 'inet', names.table])).stdout, /chain from_workspace/, 'the rules are in place');

  // and the path works as before: out to the public host, never to a private one
  assert.ok(running.length > 0, 'some workspace runs');
  const inWorkspace = (args: string[]) => run('ip', ['netns', 'exec', names.netns(running[0]!), ...args]);
  assert.equal((await inWorkspace(['curl', '-sS', '-m', '5', `http://${WORLD.public}/`])).stdout.trim(), WORLD.page);
  assert.notEqual((await inWorkspace(['curl', '-sS', '-m', '2', `http://${WORLD.private['10/8']}/`])).code, 0);
});

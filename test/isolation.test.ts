import assert from 'node:assert/strict';
import { createServer as createTcpServer } from 'node:net';
import { test } from 'node:test';
import { sandboxesAvailable, startSandboxServer, type SandboxServer } from './sandbox.js';

/**
 * Two users, a workspace each, and from inside A every way to reach B, the
 * host or more privilege fails. Real sandboxes, commands run over SSH as the
 * workspace user runs them.
 */
const available = sandboxesAvailable();

test('isolation between workspaces', { skip: available === true ? false : available }, async (suite) => {
  const t: SandboxServer = await startSandboxServer();
  let bId: string;
  {
    const alice = await t.user('alice');
    const bob = await t.user('bob');
    await t.addKey(alice, 'alice');
    await t.addKey(bob, 'bob');
    const ca = await t.call('POST', '/api/v1/teams/alice/workspaces', { token: alice, body: { name: 'wa', profile: 'tiny' } });
    assert.equal(ca.status, 201, JSON.stringify(ca.body));
    assert.equal((await t.call('POST', '/api/v1/teams/bob/workspaces', { token: bob, body: { name: 'wb', profile: 'tiny' } })).status, 201);
    await t.waitPhase(alice, 'alice/wa', ['running']);
    await t.waitPhase(bob, 'bob/wb', ['running']);
    bId = await t.wsId('bob/wb');
    const w = await t.sh('bob/wb', 'echo bob-secret-123 > ~/secret && sleep 300 >/dev/null 2>&1 & echo ok');
    assert.equal(w.stdout.trim(), 'ok', w.stderr);
  }

  const fails = async (what: string, command: string, expect?: RegExp) => {
    const r = await t.sh('alice/wa', command);
    assert.notEqual(r.code, 0, `${what} succeeded: ${r.stdout}`);
    if (expect) assert.match(r.stdout + r.stderr, expect, what);
  };

  await suite.test('A runs as its own unprivileged user with no capabilities and no new privileges', async () => {
    const id = await t.sh('alice/wa', 'id');
    assert.match(id.stdout, /^uid=(\d+)\(jovyan\) gid=\1\(jovyan\)/);
    const bobId = await t.sh('bob/wb', 'id -u');
    assert.notEqual(id.stdout.match(/uid=(\d+)/)![1], bobId.stdout.trim(), 'a distinct host uid per user');
    const status = (await t.sh('alice/wa', 'cat /proc/self/status')).stdout;
    for (const cap of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) assert.match(status, new RegExp(`${cap}:\\s+0000000000000000`), cap);
    assert.match(status, /NoNewPrivs:\s+1/);
    assert.match(status, /Seccomp:\s+2/);
  });

  test("A cannot see or read B's home", async () => {
    assert.equal((await t.sh('alice/wa', 'ls -A /home')).stdout.trim(), 'jovyan');
    const r = await t.sh('alice/wa', 'grep -rs bob-secret-123 /home /tmp /dev/shm /run /var /root /etc /.atrium 2>/dev/null; echo done');
    assert.equal(r.stdout.trim(), 'done');
    await fails('reading B\'s home through the host path', `cat ${t.dataDir}/local/mnt/${bId}/secret`, /No such file/);
  });

  test("A cannot see B's processes or anything of the host's", async () => {
    const ps = await t.sh('alice/wa', 'ps -eo user:20,pid,comm --no-headers');
    assert.doesNotMatch(ps.stdout, /sleep/, "B's sleep is invisible");
    assert.ok(ps.stdout.split('\n').filter(Boolean).every((l) => /^(jovyan|root)\s/.test(l)), ps.stdout);
    assert.doesNotMatch(ps.stdout, /node|runc|postgres/);
  });

  test("A cannot connect to B's sockets or to a host loopback listener", async () => {
    await fails("connecting to B's SSH socket", `python3 -c "import socket; s=socket.socket(socket.AF_UNIX); s.connect('${t.dataDir}/local/run/${bId}/ssh.sock')"`, /FileNotFoundError|No such file/);
    const host = createTcpServer((s) => s.end('host-secret')).listen(0, '127.0.0.1');
    await new Promise((r) => host.once('listening', r));
    const port = (host.address() as { port: number }).port;
    try {
      await fails('connecting to a host loopback port', `python3 -c "import socket; print(socket.create_connection(('127.0.0.1', ${port}), timeout=3).recv(20))"`, /ConnectionRefused|refused/);
      await fails('reaching the network', `python3 -c "import socket; socket.create_connection(('10.0.0.1', 80), timeout=3)"`, /unreachable|Network/i);
      const links = await t.sh('alice/wa', 'cat /proc/net/dev');
      assert.deepEqual(links.stdout.split('\n').slice(2).filter(Boolean).map((l) => l.trim().split(':')[0]), ['lo'], 'loopback only');
    } finally {
      host.close();
    }
  });

  await suite.test('A cannot write the system, mount, make user namespaces, write cgroups, ptrace or read shadow', async () => {
    await fails('writing /usr', 'touch /usr/x', /Read-only file system/);
    await fails('writing /etc', 'touch /etc/x', /Read-only file system/);
    await fails('writing /', 'touch /x', /Read-only file system/);
    await fails('a new user namespace', 'unshare -Ur true', /Operation not permitted/);
    await fails('a new user namespace by syscall', `python3 -c "
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
sys.exit(0 if libc.unshare(0x10000000) == 0 else print('unshare errno', ctypes.get_errno()) or 1)"`, /unshare errno 1/);
    await fails('mounting', 'mkdir -p ~/m && mount -t tmpfs none ~/m', /permission denied|must be superuser|not permitted/i);
    await fails('writing cgroupfs', 'echo 100000 > /sys/fs/cgroup/pids/pids.max', /Read-only file system|Permission denied|No such file/);
    await fails('ptrace of a process outside A', `python3 -c "
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
r = libc.ptrace(16, 1, 0, 0)
sys.exit(0 if r == 0 else print('ptrace failed errno', ctypes.get_errno()) or 1)"`, /ptrace failed errno 1/);
    await fails('reading /etc/shadow', 'cat /etc/shadow', /No such file/);
    await fails('keyctl', `python3 -c "
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
sys.exit(0 if libc.syscall(250, 0, 0) >= 0 else print('keyctl errno', ctypes.get_errno()) or 1)"`, /keyctl errno 1/);
  });

  await suite.test('a symlink planted in A never redirects what the platform does as root', async () => {
    // links where the platform touches A's home, pointing at host files and at B
    const plant = await t.sh('alice/wa', `rm -rf ~/lost+found; ln -s /etc/passwd ~/lost+found; ln -s ${t.dataDir}/local/run/${bId}/ssh.sock ~/ssh.sock; ln -s /etc ~/.atrium; echo planted`);
    assert.equal(plant.stdout.trim(), 'planted');
    const before = (await t.sh('bob/wb', 'cat ~/secret')).stdout;
    const admin = t.adminToken;
    await t.call('POST', '/api/v1/teams/alice/workspaces/wa/stop', { token: admin });
    await t.waitPhase(admin, 'alice/wa', ['stopped']);
    await t.call('POST', '/api/v1/teams/alice/workspaces/wa/start', { token: admin });
    await t.waitPhase(admin, 'alice/wa', ['running']);
    const { readFileSync, statSync } = await import('node:fs');
    assert.match(readFileSync('/etc/passwd', 'utf8'), /^root:/);
    assert.equal(statSync('/etc/passwd').uid, 0);
    assert.equal((await t.sh('bob/wb', 'cat ~/secret')).stdout, before, 'B untouched');
    assert.match((await t.sh('alice/wa', 'ls -la ~/lost+found')).stdout, /-> \/etc\/passwd/, "A's own link is still just a link in A");
  });
});

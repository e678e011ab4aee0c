import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ociConfig, type BundleInput } from './bundle.js';
import { sshdConfig, passwd } from './etc.js';
import { gpuTypeFromModel, parseNvidiaSmi } from './gpus.js';
import { ALLOWED_SYSCALLS, REFUSED_SYSCALLS, seccompProfile } from './seccomp.js';

const input: BundleInput = {
  hostname: 'lab',
  uid: 2000001,
  gid: 2000001,
  rootfs: '/r/rootfs',
  baseEtc: '/r/etc-base',
  ownEtc: '/r/etc',
  homeDir: '/r/mnt',
  agentPath: '/opt/agent',
  args: ['/.atrium/agent', '--out-fd', '3'],
  env: { HOME: '/home/jovyan' },
  cpu: { requestMilli: 500, limitMilli: 2000 },
  memoryBytes: 4 * 2 ** 30,
  pids: 1024,
  tmpBytes: 2 ** 30,
  devices: [{ path: '/dev/nvidia1', major: 195, minor: 1 }],
  cgroupsPath: '/atrium/w_x',
  readOnly: [],
};

test('the OCI config: unprivileged user, no capabilities, every namespace but user, limits from the profile', () => {
  const c = ociConfig(input) as any;
  assert.deepEqual(c.process.user, { uid: 2000001, gid: 2000001, additionalGids: [] });
  for (const set of Object.values(c.process.capabilities)) assert.deepEqual(set, []);
  assert.equal(c.process.noNewPrivileges, true);
  assert.equal(c.root.readonly, true);
  assert.deepEqual(c.linux.namespaces.map((n: { type: string }) => n.type).sort(), ['cgroup', 'ipc', 'mount', 'network', 'pid', 'uts']);
  assert.deepEqual(c.linux.resources.memory, { limit: 4 * 2 ** 30, swap: 4 * 2 ** 30, disableOOMKiller: false });
  assert.deepEqual(c.linux.resources.cpu, { shares: 512, quota: 200_000, period: 100_000 }, 'guarantee → weight, limit → quota');
  assert.equal(c.linux.resources.pids.limit, 1024);
  assert.deepEqual(c.linux.resources.devices, [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 195, minor: 1, access: 'rw' }]);
  const mount = (dest: string) => c.mounts.find((m: { destination: string }) => m.destination === dest);
  assert.deepEqual(mount('/usr').options, ['rbind', 'ro', 'nosuid', 'nodev']);
  assert.ok(mount('/home/jovyan').options.includes('nosuid') && mount('/home/jovyan').options.includes('nodev'));
  assert.ok(mount('/etc/passwd').options.includes('ro'));
  assert.ok(mount('/sys').options.includes('ro'));
  assert.equal(mount('/tmp').type, 'tmpfs');
  assert.ok(c.process.rlimits[0].hard < 20000, 'below the host hard limit, which root here cannot raise');
});

test('seccomp: an allow-list; sockets, clone and personality filtered by argument; clone3 ENOSYS', () => {
  const p = seccompProfile();
  assert.equal(p.defaultAction, 'SCMP_ACT_ERRNO');
  assert.equal(p.defaultErrnoRet, 1);
  assert.equal(new Set(ALLOWED_SYSCALLS).size, ALLOWED_SYSCALLS.length, 'no name twice');
  const allowed = new Set(p.syscalls.filter((s) => s.action === 'SCMP_ACT_ALLOW' && !s.args).flatMap((s) => s.names));
  for (const n of REFUSED_SYSCALLS) assert.ok(!allowed.has(n), `${n} is refused`);
  const conditional = (name: string) => p.syscalls.filter((s) => s.names.includes(name) && s.action === 'SCMP_ACT_ALLOW').map((s) => s.args);
  for (const name of ['socket', 'clone', 'personality']) assert.ok(!allowed.has(name) && conditional(name).every((a) => a && a.length > 0), `${name} only with its arguments checked`);
  assert.deepEqual(conditional('socket').map((a) => a![0]!.value).sort((x, y) => x - y), [1, 2, 10, 16], 'unix, inet, inet6, netlink; never vsock (40)');
  assert.deepEqual(conditional('clone'), [[{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }]], 'no namespace flags');
  assert.ok(conditional('personality').every((a) => a![0]!.value !== 0x0040000), 'address randomisation stays on');
  assert.equal(p.syscalls.find((s) => s.names.includes('clone3'))!.errnoRet, 38);
});

test('generated /etc and sshd config', () => {
  assert.match(passwd(2000001, 2000001), /^jovyan:x:2000001:2000001:Workspace user:\/home\/jovyan:\/bin\/bash$/m);
  const cfg = sshdConfig({ NB_PREFIX: '/w/ml/lab', BAD: 'a"b' });
  assert.equal(cfg.split('\n').filter((l) => l.startsWith('SetEnv')).length, 1, 'sshd reads only the first SetEnv line');
  assert.match(cfg, /^SetEnv "NB_PREFIX=\/w\/ml\/lab" "BAD=ab"$/m);
  for (const line of ['PasswordAuthentication no', 'UsePAM no', 'PermitRootLogin no', 'AuthorizedKeysFile /etc/ssh/authorized_keys', 'AllowTcpForwarding local']) assert.ok(cfg.includes(line), line);
  assert.match(cfg, /^AllowAgentForwarding no$/m, 'agent forwarding is off unless the profile allows it');
  assert.match(sshdConfig({}, true), /^AllowAgentForwarding yes$/m);
});

test('GPU discovery parses nvidia-smi -L and names types', () => {
  const listed = parseNvidiaSmi('GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-aaaa)\nGPU 1: Tesla T4 (UUID: GPU-bbbb)\n\nNo devices were found\n');
  assert.deepEqual(listed, [
    { index: 0, model: 'NVIDIA A100-SXM4-40GB', uuid: 'GPU-aaaa' },
    { index: 1, model: 'Tesla T4', uuid: 'GPU-bbbb' },
  ]);
  assert.equal(gpuTypeFromModel('NVIDIA A100-SXM4-40GB'), 'a100');
  assert.equal(gpuTypeFromModel('Tesla T4'), 't4');
  assert.equal(gpuTypeFromModel('NVIDIA H100 80GB HBM3'), 'h100');
});

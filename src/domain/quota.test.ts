import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AdmissionRefused } from './errors.js';
import { admit, emptyUsage, type Placement, type Profile, type Quota } from './quota.js';
import { canTransition, chargesCompute } from './workspace.js';

const Gi = 2 ** 30;
const profile = (over: Partial<Profile['resources']> = {}, rest: Partial<Profile> = {}): Profile => ({
  name: 'p',
  displayName: 'P',
  description: '',
  environment: { kind: 'shell' },
  resources: { cpuRequestMilli: 1000, cpuLimitMilli: 2000, memoryRequestBytes: 2 * Gi, memoryLimitBytes: 4 * Gi, gpuCount: 0, gpuType: null, storageBytes: 10 * Gi, ...over },
  tier: 'standard',
  egress: 'none',
  idleTimeoutSeconds: null,
  teams: null,
  volumes: [],
  agentForwarding: false,
  ...rest,
});
const quota: Quota = { cpuMilli: 8000, memoryBytes: 8 * Gi, storageBytes: 100 * Gi, workspaces: 5, gpus: { a100: 2 } };
const team = { name: 'ml', sensitive: false, quota };

function refusal(fn: () => unknown): AdmissionRefused {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof AdmissionRefused);
    return err;
  }
  assert.fail('expected a refusal');
}

test('quota refusals name the dimension in the profile units', () => {
  const usage = { ...emptyUsage(), memoryBytes: 6 * Gi };
  const e = refusal(() => admit({ team, profile: profile({ memoryLimitBytes: 6 * Gi }), usage, charge: { compute: true, storage: true }, pools: [] }));
  assert.equal(e.code, 'quota_exceeded');
  assert.equal(e.message, 'team ml memory: 6Gi requested, 2Gi of 8Gi left');
  assert.equal(refusal(() => admit({ team, profile: profile(), usage: { ...emptyUsage(), workspaces: 5 }, charge: { compute: false, storage: true }, pools: [] })).message, 'team ml workspaces: 1 requested, 0 of 5 left');
  assert.equal(refusal(() => admit({ team, profile: profile({ cpuLimitMilli: 500 }), usage: { ...emptyUsage(), cpuMilli: 7750 }, charge: { compute: true, storage: false }, pools: [] })).message, 'team ml cpu: 500m requested, 250m of 8 left');
});

test('start charges compute only; create without start charges storage only', () => {
  const full = { ...emptyUsage(), workspaces: 5, storageBytes: 100 * Gi };
  assert.deepEqual(admit({ team, profile: profile(), usage: full, charge: { compute: true, storage: false }, pools: [] }), { gpuPool: null });
  const busy = { ...emptyUsage(), cpuMilli: 8000 };
  assert.deepEqual(admit({ team, profile: profile(), usage: busy, charge: { compute: false, storage: true }, pools: [] }), { gpuPool: null });
});

test('GPU admission: quota per type, then a pool with grant and room', () => {
  const gpu = profile({ gpuCount: 1, gpuType: 'a100' });
  const charge = { compute: true, storage: true };
  assert.equal(refusal(() => admit({ team, profile: gpu, usage: emptyUsage(), charge, pools: [] })).code, 'no_gpu_pool');
  const pools = [
    { name: 'full', gpuType: 'a100', size: 4, used: 4, grant: 4, teamUsed: 0 },
    { name: 'open', gpuType: 'a100', size: 4, used: 1, grant: 2, teamUsed: 1 },
  ];
  assert.deepEqual(admit({ team, profile: gpu, usage: emptyUsage(), charge, pools }), { gpuPool: 'open' });
  assert.equal(refusal(() => admit({ team, profile: gpu, usage: emptyUsage(), charge, pools: [pools[0]!, { ...pools[1]!, teamUsed: 2 }] })).code, 'grant_exceeded');
  assert.equal(refusal(() => admit({ team, profile: profile({ gpuCount: 1, gpuType: 'h100' }), usage: emptyUsage(), charge, pools })).message, 'team ml gpu h100: 1 requested, 0 of 0 left');
});

test('profile team lists and the sensitive-team rule come first', () => {
  const charge = { compute: true, storage: true };
  assert.equal(refusal(() => admit({ team, profile: profile({}, { teams: ['cv'] }), usage: emptyUsage(), charge, pools: [] })).code, 'profile_not_allowed');
  const sensitive = { ...team, sensitive: true };
  assert.equal(refusal(() => admit({ team: sensitive, profile: profile(), usage: emptyUsage(), charge, pools: [] })).code, 'isolation_required');
  assert.deepEqual(admit({ team: sensitive, profile: profile({}, { tier: 'sandboxed' }), usage: emptyUsage(), charge, pools: [] }), { gpuPool: null });
});

test('compute charging and phase transitions follow the lifecycle', () => {
  assert.equal(chargesCompute('running', 'pending'), true);
  assert.equal(chargesCompute('stopped', 'pending'), false);
  assert.equal(chargesCompute('stopped', 'running'), true, 'still holds resources until it stops');
  assert.equal(chargesCompute('running', 'failed'), false);
  assert.equal(chargesCompute('deleted', 'stopping'), true);
  assert.ok(canTransition('pending', 'starting'));
  assert.ok(canTransition('running', 'stopping'));
  assert.ok(!canTransition('stopped', 'running'));
  assert.ok(!canTransition('pending', 'running'));
});

test('placement refusals: the machine has no room, no such GPUs, no such tier or no egress of that kind', () => {
  const machine: Placement = {
    name: 'this machine',
    allocatable: { cpuMilli: 4000, memoryBytes: 16 * Gi },
    guaranteed: { cpuMilli: 3500, memoryBytes: 4 * Gi },
    gpus: { t4: 1 },
    tiers: { standard: true, sandboxed: 'needs KVM, which this machine does not offer' },
    publicEgress: 'the local runtime gives sandboxes loopback only',
  };
  const charge = { compute: true, storage: true };
  const admitOn = (p: Profile, placement: Placement = machine) => refusal(() => admit({ team, profile: p, usage: emptyUsage(), charge, pools: [], placement }));

  const cpu = admitOn(profile({ cpuRequestMilli: 1000 }));
  assert.equal(cpu.code, 'capacity_exceeded');
  assert.equal(cpu.status, 403);
  assert.equal(cpu.message, 'this machine cpu: 1 guaranteed requested, 500m of 4 left');
  assert.equal(admitOn(profile({ cpuRequestMilli: 100, memoryRequestBytes: 13 * Gi })).message, 'this machine memory: 13Gi guaranteed requested, 12Gi of 16Gi left');
  // an over-committed machine reports nothing left, never a negative amount
  assert.match(admitOn(profile({ cpuRequestMilli: 100 }), { ...machine, guaranteed: { cpuMilli: 4500, memoryBytes: 0 } }).message, /100m guaranteed requested, 0 of 4 left/);

  const noType = admitOn(profile({ cpuRequestMilli: 100, gpuCount: 1, gpuType: 'a100' }));
  assert.equal(noType.code, 'no_gpu');
  assert.equal(noType.message, 'this machine has no GPU of type a100; profile p needs 1');
  assert.equal(admitOn(profile({ cpuRequestMilli: 100, gpuCount: 2, gpuType: 't4' })).message, 'this machine has only 1 GPU(s) of type t4; profile p needs 2');

  assert.deepEqual(admit({ team, profile: profile({ cpuRequestMilli: 100 }), usage: emptyUsage(), charge, pools: [], placement: machine }), { gpuPool: null }, 'the standard tier is offered and 100m fits');
  const sandboxed = admitOn(profile({ cpuRequestMilli: 100 }, { tier: 'sandboxed' }));
  assert.equal(sandboxed.code, 'tier_unavailable');
  assert.equal(sandboxed.message, 'profile p needs the sandboxed tier: needs KVM, which this machine does not offer');
  assert.equal(admitOn(profile({}, { tier: 'sandboxed' }), { ...machine, tiers: { standard: true } }).message, 'profile p needs the sandboxed tier: this machine does not offer it');

  const egress = admitOn(profile({ cpuRequestMilli: 100 }, { egress: 'public' }));
  assert.equal(egress.code, 'egress_unavailable');
  assert.equal(egress.message, 'profile p asks for public egress: the local runtime gives sandboxes loopback only');
  // placement is checked on create too, before anything is charged: a profile that can never run here is refused at once
  assert.equal(refusal(() => admit({ team, profile: profile({}, { egress: 'public' }), usage: emptyUsage(), charge: { compute: false, storage: true }, pools: [], placement: machine })).code, 'egress_unavailable');
});

test('a workspace that fits the machine and the team is admitted with placement checked', () => {
  const roomy: Placement = { name: 'm', allocatable: { cpuMilli: 8000, memoryBytes: 32 * Gi }, guaranteed: { cpuMilli: 0, memoryBytes: 0 }, gpus: { a100: 2 }, tiers: { standard: true }, publicEgress: true };
  const pools = [{ name: 'p', gpuType: 'a100', size: 2, used: 0, grant: 2, teamUsed: 0 }];
  assert.deepEqual(admit({ team, profile: profile({ gpuCount: 1, gpuType: 'a100' }, { egress: 'public' }), usage: emptyUsage(), charge: { compute: true, storage: true }, pools, placement: roomy }), { gpuPool: 'p' });
});

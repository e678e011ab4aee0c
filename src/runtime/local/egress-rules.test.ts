import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { BLOCKED_IPV4, egressRuleset } from './egress-rules.js';

const input = { table: 'atrium_t3st', vethPrefix: 'at3st', subnet: '10.88.0.0/16', resolver: '10.88.0.1', uplink: 'eth0', hostAddresses: ['192.0.2.2', '203.0.113.1'], guardUplink: false, links: [
  { veth: 'at3st0000000001', public: true, allow: [] },
  { veth: 'at3st0000000002', public: false, allow: ['10.20.0.0/16', '172.16.9.0/24'] },
  { veth: 'at3st0000000003', public: true, allow: ['10.30.0.0/16'] },
] };

test('the ruleset replaces its own table whole, in one transaction, and touches no other', () => {
  const rules = egressRuleset(input);
  const lines = rules.split('\n');
  assert.deepEqual(lines.slice(0, 3), ['table inet atrium_t3st {}', 'delete table inet atrium_t3st', 'table inet atrium_t3st {']);
  assert.equal(rules.match(/^table /gm)?.length, 2);
  assert.doesNotMatch(rules, /flush ruleset/);
});

test('from a workspace link: private, metadata and host addresses dropped, nothing but the uplink, no IPv6, no connection in', () => {
  const rules = egressRuleset(input);
  for (const range of [...BLOCKED_IPV4, '192.0.2.2/32', '203.0.113.1/32']) assert.ok(rules.includes(range), range);
  for (const range of ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16', '127.0.0.0/8']) assert.ok(BLOCKED_IPV4.includes(range), range);
  const chain = rules.slice(rules.indexOf('chain from_workspace'), rules.indexOf('chain input'));
  assert.deepEqual(chain.split('\n').slice(1, 9).map((l) => l.trim()), [
    'meta nfproto ipv6 drop',
    // other workspaces and the metadata service before any range a profile allows
    'ip daddr { 10.88.0.0/16, 169.254.169.254 } drop',
    'iifname "at3st0000000002" ip daddr { 10.20.0.0/16, 172.16.9.0/24 } accept',
    'iifname "at3st0000000003" ip daddr { 10.30.0.0/16 } accept',
    'ip daddr @blocked drop',
    // a link allowed ranges only reaches nothing public
    'iifname { "at3st0000000002" } drop',
    'oifname != "eth0" drop',
    'accept',
  ]);
  assert.match(rules, /oifname "at3st\*" ct state established,related accept\n\s+oifname "at3st\*" drop/);
  // to the host: only DNS to the relay
  const inputChain = rules.slice(rules.indexOf('chain input'), rules.indexOf('chain postrouting'));
  assert.match(inputChain, /iifname "at3st\*" ip daddr 10\.88\.0\.1 meta l4proto \{ udp, tcp \} th dport 53 accept/);
  assert.match(inputChain, /iifname "at3st\*" drop/);
  assert.match(rules, /ip saddr 10\.88\.0\.0\/16 oifname "eth0" masquerade/);
});

test('when Atrium turned forwarding on for the uplink, nothing else arriving by it is forwarded', () => {
  assert.doesNotMatch(egressRuleset(input), /iifname "eth0" drop/);
  assert.match(egressRuleset({ ...input, guardUplink: true }), /iifname "eth0" drop/);
});

test('with every link public and none allowed ranges, no per-link rule', () => {
  const chain = egressRuleset({ ...input, links: [{ veth: 'at3st0000000001', public: true, allow: [] }] });
  assert.doesNotMatch(chain, /iifname "at3st0000000001"/);
  assert.doesNotMatch(egressRuleset({ ...input, links: [] }), /iifname \{/);
});

test('nftables accepts the ruleset (nft --check)', { skip: process.getuid?.() === 0 ? false : 'nft --check needs root' }, () => {
  if (!existsSync('/usr/sbin/nft')) {
    if (process.env.CI) throw new Error('nft is missing: scripts/deps.sh installs nftables');
    return;
  }
  for (const guardUplink of [false, true]) execFileSync('/usr/sbin/nft', ['--check', '-f', '-'], { input: egressRuleset({ ...input, guardUplink }) });
  execFileSync('/usr/sbin/nft', ['--check', '-f', '-'], { input: egressRuleset({ ...input, links: [] }) });
});

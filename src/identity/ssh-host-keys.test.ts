import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadSshKeys } from './ssh-host-keys.js';

test('the SSH keys the control plane holds are real OpenSSH keys, kept and derived the same way every time', () => {
  const dir = mkdtempSync(join(tmpdir(), 'atrium-keys-'));
  try {
    const keys = loadSshKeys(dir);
    assert.equal(keys.gatewayCreated, true);
    // ssh-keygen reads the gateway's key file and finds the fingerprint Atrium shows
    const file = join(dir, 'ssh', 'ssh_host_ed25519_key');
    assert.equal(execFileSync('ssh-keygen', ['-lf', file]).toString().trim(), `256 ${keys.gateway.fingerprint} atrium-gateway (ED25519)`);
    // a workspace's host key: its private half gives the public half Atrium pins
    const host = keys.workspaceHost('w_one');
    const hostFile = join(dir, 'host');
    writeFileSync(hostFile, host.privateKey, { mode: 0o600 });
    assert.equal(execFileSync('ssh-keygen', ['-y', '-f', hostFile]).toString().trim(), host.publicKey);
    // the same again after a restart, different per workspace and per purpose
    const again = loadSshKeys(dir);
    assert.equal(again.gatewayCreated, false);
    assert.equal(again.gateway.publicKey, keys.gateway.publicKey);
    assert.equal(again.workspaceHost('w_one').privateKey, host.privateKey);
    assert.notEqual(keys.workspaceHost('w_two').publicKey, host.publicKey);
    assert.notEqual(keys.workspaceClient('w_one').publicKey, host.publicKey);
    assert.equal(keys.workspaceClientPublic('w_one'), keys.workspaceClient('w_one').publicKey);
    assert.equal(keys.workspaceClientPublic('w_fresh'), keys.workspaceClient('w_fresh').publicKey);
    // derived again once many others have pushed it out of what is kept: the same key
    for (let i = 0; i < 1500; i++) keys.workspaceHost(`w_${i}`);
    assert.equal(keys.workspaceHost('w_one').privateKey, host.privateKey);
    assert.deepEqual(keys.workspaceHost('w_one').blob, host.blob);
    // the secrets are root's alone
    assert.equal(execFileSync('stat', ['-c', '%a', join(dir, 'ssh', 'workspace-keys.seed')]).toString().trim(), '600');
    // a damaged secret stops the start rather than silently changing every key
    writeFileSync(join(dir, 'ssh', 'workspace-keys.seed'), 'short');
    assert.throws(() => loadSshKeys(dir), /damaged: it holds 5 bytes/);
    assert.equal(readFileSync(join(dir, 'ssh', 'workspace-keys.seed'), 'utf8'), 'short', 'and leaves it for the admin to look at');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

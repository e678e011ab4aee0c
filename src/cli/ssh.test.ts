import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configBlock, knownHosts, lineDiff, withBlock } from './ssh.js';
import { tunnelTarget } from './ssh-stdio.js';

const access = {
  gateway: { host: 'atrium.example.com', port: 2222, hostKey: 'ssh-ed25519 AAAAgw atrium-gateway', fingerprint: 'SHA256:gw' },
  keys: 1,
  workspaces: [
    { team: 'ml', name: 'train', phase: 'running' as const, alias: 'atrium.ml.train', gatewayUser: 'ml.train', tunnel: '/api/v1/teams/ml/workspaces/train/ssh', hostKey: 'ssh-ed25519 AAAAws atrium-host', fingerprint: 'SHA256:ws' },
  ],
};
const credentials = { url: 'https://atrium.example.com', token: 'atr_x', username: 'ana' };

test('config-ssh keeps one block, first in the file, and leaves the rest as it was', () => {
  const block = configBlock(access, credentials, 'tunnel', '/home/ana/.config/atrium/known_hosts');
  assert.match(block, /^Host atrium\.ml\.train\n {2}HostName atrium\.ml\.train\n {2}User jovyan\n {2}ProxyCommand .+ ssh --stdio ml\/train\n {2}HostKeyAlias atrium\.ml\.train\n/m);
  assert.match(block, /\nHost \*\n# END atrium\n$/, 'the block ends with Host *: what follows it applies to every host again');
  const mine = 'ServerAliveInterval 30\nHost other\n  User me\n';
  const once = withBlock(mine, block);
  assert.ok(once.startsWith('# BEGIN atrium'), 'first: OpenSSH takes the first value it meets');
  assert.ok(once.endsWith(mine));
  const changed = configBlock({ ...access, workspaces: [] }, credentials, 'tunnel', '/k');
  const twice = withBlock(once, changed);
  assert.equal(twice.match(/# BEGIN atrium/g)?.length, 1);
  assert.ok(!twice.includes('atrium.ml.train'));
  assert.ok(twice.endsWith(mine));
  assert.equal(withBlock('', block), block);
  assert.throws(() => withBlock('# BEGIN atrium\nHost x\n', block), /no "# END atrium"/);
  const gateway = configBlock(access, credentials, 'gateway', '/k');
  assert.match(gateway, /Host atrium\.ml\.train\n {2}HostName atrium\.example\.com\n {2}Port 2222\n {2}User ml\.train\n {2}HostKeyAlias atrium-gateway\.atrium\.example\.com\.2222\n/);
  assert.equal(knownHosts(access, true), 'atrium.ml.train ssh-ed25519 AAAAws\natrium-gateway.atrium.example.com.2222 ssh-ed25519 AAAAgw\n');
});

test('the dry run shows added and removed lines only', () => {
  assert.equal(lineDiff('a\nb\nc', 'a\nx\nc'), '-b\n+x');
  assert.equal(lineDiff('', 'a'), '-\n+a');
  assert.equal(lineDiff('same', 'same'), '');
});

test('the tunnel takes every way people write a workspace', () => {
  assert.deepEqual(tunnelTarget('ml/train', 'ana'), { team: 'ml', name: 'train' });
  assert.deepEqual(tunnelTarget('ml.train', 'ana'), { team: 'ml', name: 'train' });
  assert.deepEqual(tunnelTarget('atrium.ml.train', 'ana'), { team: 'ml', name: 'train' });
  assert.deepEqual(tunnelTarget('train', 'ana'), { team: 'ana', name: 'train' });
  assert.equal(tunnelTarget('train', ''), undefined, 'a bare name needs to know whose');
  for (const bad of ['ML/train', 'a/b/c', '../x', 'ml/tr--ain', 'ml/']) assert.equal(tunnelTarget(bad, 'ana'), undefined, bad);
});

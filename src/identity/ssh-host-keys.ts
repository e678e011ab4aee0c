import { createHash, createHmac, createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { secretFile } from './secrets.js';

/** An Ed25519 key pair in OpenSSH's formats. */
export interface SshKeyPair {
  /** the private key as `ssh-keygen` writes it (`-----BEGIN OPENSSH PRIVATE KEY-----`), unencrypted */
  privateKey: string;
  /** the public key line, `ssh-ed25519 AAAA… comment` */
  publicKey: string;
  /** the public key blob (what SSH sends on the wire) */
  blob: Buffer;
  /** `SHA256:…`, as `ssh-keygen -l` prints it */
  fingerprint: string;
}

/** DER prefix of a PKCS#8 Ed25519 private key; the 32-byte seed follows. */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function sshString(v: Buffer | string): Buffer {
  const b = typeof v === 'string' ? Buffer.from(v) : v;
  return Buffer.concat([u32(b.length), b]);
}

/** `SHA256:…` of a public key blob. */
export function sshFingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * The 32-byte Ed25519 public key of a seed. A JWK holding the seed is read
 * in about 40 µs; the same key as PKCS#8 DER takes OpenSSL 3's decoders
 * about 800 µs, which for every running workspace's key at each start of
 * the control plane was seconds. (The JWK's `x`, the public half, is what
 * is asked for: left empty, it is computed from `d`.)
 */
function ed25519PublicFromSeed(seed: Buffer): Buffer {
  try {
    const jwk = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: seed.toString('base64url'), x: '' }, format: 'jwk' }).export({ format: 'jwk' });
    if (jwk.d === seed.toString('base64url') && typeof jwk.x === 'string') return Buffer.from(jwk.x, 'base64url');
  } catch {
    // a Node that wants the public half given: the slow way below
  }
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
  return createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(-32);
}

/**
 * The Ed25519 key pair a 32-byte seed determines, encoded as OpenSSH
 * (`openssh-key-v1`, unencrypted). The same seed always gives the same
 * bytes, so a key derived again is identical to the file written before.
 */
export function ed25519FromSeed(seed: Buffer, comment: string): SshKeyPair {
  if (seed.length !== 32) throw new Error('an Ed25519 seed is 32 bytes');
  const pub = ed25519PublicFromSeed(seed);
  const blob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)]);
  // the two check words only have to match each other; derived from the seed, the file is stable
  const check = createHash('sha256').update(seed).digest().subarray(0, 4);
  let secret = Buffer.concat([check, check, sshString('ssh-ed25519'), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(comment)]);
  const pad = (8 - (secret.length % 8)) % 8;
  secret = Buffer.concat([secret, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const body = Buffer.concat([Buffer.from('openssh-key-v1\0'), sshString('none'), sshString('none'), sshString(''), u32(1), sshString(blob), sshString(secret)]);
  const lines = body.toString('base64').match(/.{1,70}/g) ?? [];
  // joined, not concatenated: a string kept for long is then one flat string, not a tree of the pieces
  return {
    privateKey: ['-----BEGIN OPENSSH PRIVATE KEY-----', ...lines, '-----END OPENSSH PRIVATE KEY-----', ''].join('\n'),
    publicKey: ['ssh-ed25519', blob.toString('base64'), ...(comment ? [comment] : [])].join(' '),
    blob,
    fingerprint: sshFingerprint(blob),
  };
}

/** The public key line alone of the pair a seed determines (what `ed25519FromSeed` gives as `publicKey`), without encoding the private half. */
function ed25519PublicLine(seed: Buffer, comment: string): string {
  const blob = Buffer.concat([sshString('ssh-ed25519'), sshString(ed25519PublicFromSeed(seed))]);
  return ['ssh-ed25519', blob.toString('base64'), ...(comment ? [comment] : [])].join(' ');
}

/** Key pairs derived lately, kept for their next use (a gateway connection, a start): a few hundred bytes each. */
const PAIRS_KEPT = 1024;
/** Public key lines kept (every running workspace's, read by each pass of the SSH access sync): about 150 bytes each. */
const PUBLIC_KEPT = 100_000;

/**
 * The SSH keys the control plane holds, all from two secrets in the data
 * directory (`ssh/`, root-only):
 * - the gateway's host key, kept as an OpenSSH key file beside its seed so
 *   `ssh-keygen -lf` shows its fingerprint;
 * - per workspace, its sshd's host key (pinned by the gateway and written
 *   into the known-hosts file `atrium config-ssh` maintains) and the key the
 *   gateway logs in with. Both are derived from a secret and the workspace
 *   id, so nothing per workspace is stored, every process sharing the data
 *   directory derives the same keys, and a workspace made again under the
 *   same name (a new id) gets new ones.
 */
export function loadSshKeys(dataDir: string) {
  const dir = join(dataDir, 'ssh');
  const gatewaySeed = secretFile(join(dir, 'gateway-host-key.seed'), 'every SSH host key changes');
  const gateway = ed25519FromSeed(gatewaySeed.secret, 'atrium-gateway');
  const keyFile = join(dir, 'ssh_host_ed25519_key');
  if (!existsSync(keyFile) || readFileSync(keyFile, 'utf8') !== gateway.privateKey) {
    writeFileSync(`${keyFile}.new`, gateway.privateKey, { mode: 0o600 });
    renameSync(`${keyFile}.new`, keyFile);
    writeFileSync(`${keyFile}.pub`, `${gateway.publicKey}\n`, { mode: 0o644 });
  }
  const { secret } = secretFile(join(dir, 'workspace-keys.seed'), 'every SSH host key changes');
  // Deriving a pair takes tens of microseconds. Recent pairs are kept in use order; the public key lines of
  // all are kept apart, small, since the access sync asks for every running workspace's each pass.
  // (Kept whole for 10,000 workspaces, pairs held 30 MB: each public blob pinned the 8 KiB pool slab it was cut from.)
  const pairs = new Map<string, SshKeyPair>();
  const publicLines = new Map<string, string>();
  const seedOf = (id: string): Buffer => createHmac('sha256', secret).update(`atrium workspace ${id}`).digest();
  const made = (id: string, purpose: string): SshKeyPair => ed25519FromSeed(seedOf(id), `atrium-${purpose}`);
  const derive = (purpose: string, workspaceId: string): SshKeyPair => {
    const id = `${purpose} ${workspaceId}`;
    let pair = pairs.get(id);
    if (pair) pairs.delete(id);
    else {
      const fresh = made(id, purpose);
      // a blob of its own, not a slice of a shared pool slab
      const blob = Buffer.allocUnsafeSlow(fresh.blob.length);
      fresh.blob.copy(blob);
      pair = { ...fresh, blob };
      if (pairs.size >= PAIRS_KEPT) pairs.delete(pairs.keys().next().value!);
    }
    pairs.set(id, pair);
    return pair;
  };
  const publicLine = (purpose: string, workspaceId: string): string => {
    const id = `${purpose} ${workspaceId}`;
    let line = publicLines.get(id) ?? pairs.get(id)?.publicKey;
    if (line === undefined) {
      // only the line is kept: a pass over every running workspace would otherwise churn the pairs kept for starts and logins
      line = ed25519PublicLine(seedOf(id), `atrium-${purpose}`);
      if (publicLines.size >= PUBLIC_KEPT) publicLines.clear();
      publicLines.set(id, line);
    }
    return line;
  };
  return {
    /** the gateway's host key */
    gateway,
    /** whether the gateway's host key was made just now (its fingerprint is then worth printing) */
    gatewayCreated: gatewaySeed.created,
    /** the host key of a workspace's sshd */
    workspaceHost: (workspaceId: string) => derive('host', workspaceId),
    /** the key the gateway logs in to a workspace's sshd with */
    workspaceClient: (workspaceId: string) => derive('gateway', workspaceId),
    /** the public key line of the key the gateway logs in with (its `authorized_keys` line) */
    workspaceClientPublic: (workspaceId: string) => publicLine('gateway', workspaceId),
  };
}

export type SshKeys = ReturnType<typeof loadSshKeys>;

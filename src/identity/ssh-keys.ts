import { createHash } from 'node:crypto';
import { InvalidInput } from '../domain/index.js';

const KEY_TYPES = new Set([
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
]);

/**
 * Parses one OpenSSH public key line (`type base64 [comment]`), checks that the
 * blob names the same type, and returns its normalized form and SHA256 fingerprint.
 */
export function parsePublicKey(line: string): { type: string; normalized: string; fingerprint: string; comment: string } {
  const parts = line.trim().split(/\s+/);
  const [type, b64, ...comment] = parts;
  if (!type || !b64 || !KEY_TYPES.has(type)) {
    throw new InvalidInput(`publicKey: not an OpenSSH public key; expected one line like "ssh-ed25519 AAAA… you@host" with type ${[...KEY_TYPES].join(', ')}`);
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new InvalidInput('publicKey: the key data is not base64');
  const blob = Buffer.from(b64, 'base64');
  const nameLength = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  if (nameLength < 0 || 4 + nameLength > blob.length || blob.subarray(4, 4 + nameLength).toString() !== type) {
    throw new InvalidInput(`publicKey: the key data does not hold a ${type} key`);
  }
  if (type === 'ssh-rsa' && blob.length < 260) throw new InvalidInput('publicKey: RSA keys must have at least 2048 bits');
  const fingerprint = `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
  return { type, normalized: `${type} ${b64}`, fingerprint, comment: comment.join(' ') };
}

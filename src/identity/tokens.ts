import { randomBytes } from 'node:crypto';
import { constantTimeEqual, randomSecret, sha256 } from './secrets.js';

/**
 * API tokens look like `atr_<id>_<secret>`: the id finds the row, the secret
 * is compared against its SHA-256 in constant time. Only the hash is stored.
 */
export const TOKEN_PREFIX = 'atr_';

export function mintToken(): { id: string; secret: string; token: string; secretHash: string } {
  const id = randomBytes(9).toString('base64url').replace(/[-_]/g, 'x');
  const secret = randomSecret(32);
  return { id, secret, token: `${TOKEN_PREFIX}${id}_${secret}`, secretHash: sha256(secret) };
}

export function parseToken(token: string): { id: string; secret: string } | undefined {
  if (!token.startsWith(TOKEN_PREFIX)) return undefined;
  const rest = token.slice(TOKEN_PREFIX.length);
  const sep = rest.indexOf('_');
  if (sep !== 12 || rest.length < 20 || rest.length > 128) return undefined;
  return { id: rest.slice(0, sep), secret: rest.slice(sep + 1) };
}

export function tokenMatches(secret: string, secretHash: string): boolean {
  return constantTimeEqual(sha256(secret), secretHash);
}

import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import argon2 from 'argon2';

/** argon2id with OWASP's second recommended setting (19 MiB, t=2, p=1): about 20 ms here. */
const ARGON2 = { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, ARGON2);
}

export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await argon2.verify(hash, password);
  } catch {
    return false;
  }
}

// Verifying against a fixed hash when the user does not exist keeps the
// response time the same, so login timing does not reveal which names exist.
let dummyHash: Promise<string> | undefined;
export async function burnPasswordCheck(password: string): Promise<void> {
  dummyHash ??= hashPassword(randomBytes(16).toString('hex'));
  await verifyPassword(await dummyHash, password);
}

/** High-entropy secrets (session ids, token secrets) need no slow hash: SHA-256 is enough. */
export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

export function randomSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

export function constantTimeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

/** Generates a readable initial password: 4 groups of 5 characters from an unambiguous alphabet. */
export function generatePassword(): string {
  const alphabet = 'abcdefghjkmnpqrstuvwxyz23456789';
  const bytes = randomBytes(20);
  let out = '';
  for (let i = 0; i < 20; i++) {
    if (i > 0 && i % 5 === 0) out += '-';
    out += alphabet[bytes[i]! % alphabet.length];
  }
  return out;
}

/**
 * Reads a 32-byte secret from `file`, creating it (mode 0600, atomically)
 * the first time; `losing` says what a new one would cost, for the message
 * about a damaged file.
 */
export function secretFile(file: string, losing: string): { secret: Buffer; created: boolean } {
  if (existsSync(file)) {
    const secret = readFileSync(file);
    if (secret.length !== 32) throw new Error(`${file} is damaged: it holds ${secret.length} bytes, not 32; remove it to make a new one (${losing})`);
    return { secret, created: false };
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const secret = randomBytes(32);
  const partial = `${file}.${process.pid}.new`;
  writeFileSync(partial, secret, { mode: 0o600 });
  renameSync(partial, file);
  return { secret, created: true };
}

/**
 * Encrypts `plain` with AES-256-GCM under a 32-byte key, bound to `context`
 * (what it is, e.g. a key id: a sealed value moved to another row does not
 * open). The result is text: `v1.<iv>.<ciphertext>.<tag>`, base64url.
 */
export function seal(key: Buffer, plain: Buffer, context: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(context));
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return ['v1', iv.toString('base64url'), body.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
}

/** Opens what `seal` made; throws when the key or context differ or the text was changed. */
export function unseal(key: Buffer, sealed: string, context: string): Buffer {
  const [v, iv, body, tag] = sealed.split('.');
  if (v !== 'v1' || iv === undefined || body === undefined || tag === undefined) throw new Error('not a sealed value');
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  decipher.setAAD(Buffer.from(context));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]);
}

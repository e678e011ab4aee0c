import { createHash, createPrivateKey, generateKeyPair, randomUUID, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { exportJWK, SignJWT, type JWK } from 'jose';
import type { NewSigningKey, SigningKeyRecord, Store } from '../store/index.js';
import { seal, secretFile, unseal } from './secrets.js';

const generate = promisify(generateKeyPair);

/** RS256: what every verifier takes (AWS STS, Vault, MinIO, Kubernetes' own tokens). */
const ALGORITHM = 'RS256';
/** How long a read of the keys serves the key set (another control plane's rotation shows after at most this). */
const KEYS_FRESH_MS = 30_000;
/** Clocks differ: a retired key stays published this much longer than its last token's expiry. */
const SKEW_MS = 5 * 60_000;

/** What a workload token says about the workspace holding it. */
export interface WorkloadSubject {
  workspaceId: string;
  team: string;
  workspace: string;
  owner: string;
  profile: string;
}

/** A token issued to a workspace. */
export interface IssuedToken {
  token: string;
  subject: string;
  audiences: string[];
  keyId: string;
  issuedAt: number;
  expiresAt: number;
}

/** A signing key as admins see it: never its private half. */
export interface SigningKeyView {
  kid: string;
  algorithm: string;
  /** `next`: published ahead of its turn; `signing`; `retired`: published until its last token expires */
  state: 'next' | 'signing' | 'retired';
  createdAt: number;
  activatedAt: number | null;
  retiredAt: number | null;
  expiresAt: number | null;
}

export interface WorkloadIdentityOptions {
  store: Store;
  audiences: string[];
  tokenLifetimeMs: number;
  keyRotationMs: number;
  /** the 32-byte key the signing keys are sealed with in the database */
  keyFile: string;
  log: { info(obj: unknown, msg?: string): void; warn(obj: unknown, msg?: string): void; debug(obj: unknown, msg?: string): void };
  now?: () => number;
}

/** The signing keys in the database cannot be opened with this key file: wrong file, or the database was copied without it. */
export class SigningKeysSealedElsewhere extends Error {
  override name = 'SigningKeysSealedElsewhere';
}

/** A signing key ready to sign. */
interface OpenKey {
  record: SigningKeyRecord;
  privateKey: KeyObject;
}

const SUBJECT_PREFIX = 'system:atrium';

/** The `sub` of a workspace's tokens: what a trust policy names. */
export function workloadSubject(team: string, workspace: string): string {
  return `${SUBJECT_PREFIX}:${team}:${workspace}`;
}

/**
 * Atrium as an OpenID issuer for workloads: RS256 signing keys made here,
 * sealed (AES-256-GCM) under a key file outside the database, rotated every
 * `keyRotationMs` with overlap (the next key is published a full rotation
 * before it signs; a retired key stays published until the last token it
 * signed expires), and short-lived tokens for running workspaces. Verifiers
 * find the keys through the discovery document and JWKS on the issuer URL.
 */
export async function createWorkloadIdentity(opts: WorkloadIdentityOptions) {
  const { store, log } = opts;
  const now = opts.now ?? Date.now;
  let kek: Buffer;
  try {
    kek = secretFile(opts.keyFile, 'every workload identity signing key is made again; tokens signed before stop verifying').secret;
  } catch (err) {
    throw new SigningKeysSealedElsewhere(`workloadIdentity.keyFile: ${(err as Error).message}`);
  }
  let issuer = '';
  /** the keys as last read from the database */
  let keys: SigningKeyRecord[] = [];
  const opened = new Map<string, KeyObject>();
  let issuedTotal = 0;

  async function newKey(active: boolean): Promise<NewSigningKey> {
    const { publicKey, privateKey } = await generate('rsa', { modulusLength: 2048 });
    const jwk = await exportJWK(publicKey);
    // the RFC 7638 thumbprint's inputs, hashed: a stable id no two keys share
    const kid = createHash('sha256').update(JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n })).digest('base64url').slice(0, 32);
    const der = privateKey.export({ format: 'der', type: 'pkcs8' });
    return { kid, algorithm: ALGORITHM, publicJwk: JSON.stringify({ ...jwk, kid, alg: ALGORITHM, use: 'sig' }), sealedPrivateKey: seal(kek, der, `signing key ${kid}`), active };
  }

  function open(record: SigningKeyRecord): KeyObject {
    let key = opened.get(record.kid);
    if (!key) {
      let der: Buffer;
      try {
        der = unseal(kek, record.sealedPrivateKey, `signing key ${record.kid}`);
      } catch {
        throw new SigningKeysSealedElsewhere(
          `workloadIdentity.keyFile: the signing keys in the database were sealed with another key than ${opts.keyFile}; give every control plane on this database the same file (or remove the rows of signing_keys to make new keys: tokens issued before stop verifying)`,
        );
      }
      key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
      opened.set(record.kid, key);
    }
    return key;
  }

  /** when the keys were last read */
  let readAt = 0;
  async function reload(): Promise<void> {
    keys = await store.signingKeys.list();
    readAt = now();
    for (const kid of opened.keys()) if (!keys.some((k) => k.kid === kid)) opened.delete(kid);
  }
  /** The keys, read again when older than this: the key set is public, so no request reaches the database each time. */
  const fresh = async (): Promise<void> => {
    if (now() - readAt > KEYS_FRESH_MS) await reload();
  };

  function signing(): OpenKey {
    const current = keys.filter((k) => k.activatedAt !== null && k.retiredAt === null).sort((a, b) => b.activatedAt! - a.activatedAt!)[0];
    if (!current) throw new Error('workload identity has no signing key');
    return { record: current, privateKey: open(current) };
  }

  /** Retires the signing key and makes the next one sign; `force` does it before its time. */
  async function rotate(force: boolean): Promise<boolean> {
    await reload();
    const current = signing().record;
    if (!force && current.activatedAt! + opts.keyRotationMs > now()) return false;
    const next = await newKey(false);
    // published until every token it signed has expired, and clocks' skew after that
    const rotated = await store.signingKeys.rotate(current.kid, next, opts.tokenLifetimeMs + SKEW_MS);
    await reload();
    if (rotated) log.info({ retired: current.kid, signing: signing().record.kid, next: next.kid }, 'workload identity signing key rotated');
    return rotated;
  }

  // first start: a key that signs and one published ahead of its turn
  await reload();
  if (!keys.some((k) => k.activatedAt !== null && k.retiredAt === null)) {
    if (await store.signingKeys.initialize([await newKey(true), await newKey(false)])) log.info({}, 'made the workload identity signing keys');
    await reload();
  }
  // every key must open now: a wrong key file is a start-up error, not a failure at the first token
  for (const k of keys) open(k);

  return {
    audiences: opts.audiences,
    tokenLifetimeMs: opts.tokenLifetimeMs,
    keyRotationMs: opts.keyRotationMs,
    /** Sets the issuer URL (the public URL, known once the server listens). */
    setIssuer(url: string): void {
      issuer = url.replace(/\/+$/, '');
    },
    get issuer(): string {
      return issuer;
    },
    /** tokens issued since start */
    get issuedTotal(): number {
      return issuedTotal;
    },
    /** The OpenID discovery document verifiers read at `<issuer>/.well-known/openid-configuration`. */
    discovery() {
      return {
        issuer,
        jwks_uri: `${issuer}/.well-known/jwks.json`,
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: [ALGORITHM],
        claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'team', 'workspace', 'owner', 'profile'],
      };
    },
    /** The public keys: the next, the signing and the retired ones whose tokens may still be valid. */
    async jwks(): Promise<{ keys: JWK[] }> {
      await fresh();
      return { keys: keys.map((k) => JSON.parse(k.publicJwk) as JWK) };
    },
    async keys(): Promise<SigningKeyView[]> {
      await fresh();
      return keys.map((k) => ({
        kid: k.kid,
        algorithm: k.algorithm,
        state: k.retiredAt !== null ? 'retired' : k.activatedAt !== null ? 'signing' : 'next',
        createdAt: k.createdAt,
        activatedAt: k.activatedAt,
        retiredAt: k.retiredAt,
        expiresAt: k.expiresAt,
      }));
    },
    /** Rotates when the signing key is due (every control plane checks; the first one rotates). */
    rotateIfDue: () => rotate(false),
    /** Rotates now (an admin suspects a key leaked, or tries the overlap). */
    rotateNow: () => rotate(true),
    /** A token for a running workspace, signed by the current key. */
    async issue(s: WorkloadSubject): Promise<IssuedToken> {
      if (!issuer) throw new Error('workload identity: the issuer URL is not known yet');
      const { record, privateKey } = signing();
      const iat = Math.floor(now() / 1000);
      const exp = iat + Math.floor(opts.tokenLifetimeMs / 1000);
      const subject = workloadSubject(s.team, s.workspace);
      const token = await new SignJWT({ team: s.team, workspace: s.workspace, owner: s.owner, profile: s.profile })
        .setProtectedHeader({ alg: ALGORITHM, kid: record.kid, typ: 'JWT' })
        .setIssuer(issuer)
        .setSubject(subject)
        .setAudience(opts.audiences.length === 1 ? opts.audiences[0]! : opts.audiences)
        .setIssuedAt(iat)
        .setNotBefore(iat)
        .setExpirationTime(exp)
        .setJti(randomUUID())
        .sign(privateKey);
      issuedTotal++;
      log.debug({ workspace: s.workspaceId, subject, kid: record.kid, exp }, 'workload token issued');
      return { token, subject, audiences: opts.audiences, keyId: record.kid, issuedAt: iat * 1000, expiresAt: exp * 1000 };
    },
  };
}

export type WorkloadIdentity = Awaited<ReturnType<typeof createWorkloadIdentity>>;

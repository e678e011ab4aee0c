import { transaction, type StoreContext } from './common.js';

/** A workload identity signing key as stored: the private half sealed. */
export interface SigningKeyRecord {
  kid: string;
  algorithm: string;
  publicJwk: string;
  sealedPrivateKey: string;
  createdAt: number;
  /** when it began to sign; null while it is published ahead of its turn */
  activatedAt: number | null;
  /** when it stopped signing */
  retiredAt: number | null;
  /** when the last token it signed expires */
  expiresAt: number | null;
}

/** A key to add: the one that signs from now (`active`) or the one published ahead of its turn. */
export interface NewSigningKey {
  kid: string;
  algorithm: string;
  publicJwk: string;
  sealedPrivateKey: string;
  active: boolean;
}

type Row = { kid: string; algorithm: string; public_jwk: string; private_key: string; created_at: number; activated_at: number | null; retired_at: number | null; expires_at: number | null };

const record = (r: Row): SigningKeyRecord => ({
  kid: r.kid,
  algorithm: r.algorithm,
  publicJwk: r.public_jwk,
  sealedPrivateKey: r.private_key,
  createdAt: Number(r.created_at),
  activatedAt: r.activated_at === null ? null : Number(r.activated_at),
  retiredAt: r.retired_at === null ? null : Number(r.retired_at),
  expiresAt: r.expires_at === null ? null : Number(r.expires_at),
});

/**
 * The workload identity signing keys, shared by every control plane on the
 * database: one signs, one waits its turn (published, so verifiers caching
 * the key set know it before the first token it signs), and retired ones
 * stay until the last token they signed expires.
 */
export function createSigningKeysRepo(ctx: StoreContext) {
  const { db } = ctx;
  return {
    /** Every key not yet expired, oldest first. */
    async list(): Promise<SigningKeyRecord[]> {
      const rows = await db.selectFrom('signing_keys').selectAll().orderBy('created_at').orderBy('kid').execute();
      const now = ctx.now();
      return rows.map(record).filter((k) => k.expiresAt === null || k.expiresAt > now);
    },

    /**
     * Adds the first keys, when there are none: both or neither (another
     * control plane may do the same at the same moment: the first wins).
     * Returns whether these were added.
     */
    async initialize(keys: NewSigningKey[]): Promise<boolean> {
      return transaction(ctx, async (tx) => {
        const any = await tx.db.selectFrom('signing_keys').select('kid').where('retired_at', 'is', null).executeTakeFirst();
        if (any) return false;
        const now = ctx.now();
        for (const k of keys) {
          await tx.db.insertInto('signing_keys').values({ kid: k.kid, algorithm: k.algorithm, public_jwk: k.publicJwk, private_key: k.sealedPrivateKey, created_at: now, activated_at: k.active ? now : null, retired_at: null, expires_at: null }).execute();
        }
        return true;
      });
    },

    /**
     * Rotates: the signing key `from` retires (published until `publishedFor`
     * ms from now, when its last token has expired), the waiting key signs,
     * and `next` waits its turn. Nothing, and false, when `from` no longer
     * signs (another control plane rotated first).
     */
    async rotate(from: string, next: NewSigningKey, publishedFor: number): Promise<boolean> {
      return transaction(ctx, async (tx) => {
        const now = ctx.now();
        const retired = await tx.db.updateTable('signing_keys').set({ retired_at: now, expires_at: now + publishedFor }).where('kid', '=', from).where('retired_at', 'is', null).where('activated_at', 'is not', null).executeTakeFirst();
        if (Number(retired.numUpdatedRows) !== 1) return false;
        const waiting = await tx.db.selectFrom('signing_keys').select('kid').where('activated_at', 'is', null).orderBy('created_at').executeTakeFirst();
        if (waiting) {
          await tx.db.updateTable('signing_keys').set({ activated_at: now }).where('kid', '=', waiting.kid).execute();
        }
        await tx.db.insertInto('signing_keys').values({ kid: next.kid, algorithm: next.algorithm, public_jwk: next.publicJwk, private_key: next.sealedPrivateKey, created_at: now, activated_at: waiting ? null : now, retired_at: null, expires_at: null }).execute();
        // expired keys go, private halves with them
        await tx.db.deleteFrom('signing_keys').where('expires_at', '<=', now).execute();
        return true;
      });
    },
  };
}

export type SigningKeysRepo = ReturnType<typeof createSigningKeysRepo>;

import { randomBytes } from 'node:crypto';
import { TooMany } from '../domain/index.js';
import type { Authenticated } from '../identity/index.js';
import type { WorkspaceAddress } from './paths.js';

/**
 * Entry to a workspace's own origin (design §7). The portal's origin hands
 * out a one-time code; the workspace origin exchanges it for an app session
 * valid for that workspace alone, whose cookie is HttpOnly and host-only.
 * An app session is re-checked against the credential it came from every
 * few seconds, so a revoked session, a disabled account or an ended
 * membership closes the workspace too.
 */

interface Grant {
  auth: Authenticated;
  workspaceId: string;
  address: WorkspaceAddress;
  expiresAt: number;
}

/** What an app cookie stands for: one person, one workspace. */
interface AppSession extends Grant {
  checkedAt: number;
}

const CODE_TTL_MS = 60_000;
/** entry codes outstanding at once, across everyone: each costs memory until used or expired */
const MAX_PENDING_CODES = 10_000;
const RECHECK_MS = 5_000;

export interface EntryOptions {
  /** lifetime of an app session, at most that of the session it came from */
  appSessionTtlSeconds: number;
  /** the credential an app session came from, read afresh: undefined once it is no longer valid */
  recheck(auth: Authenticated): Promise<Authenticated | undefined>;
  now?: () => number;
}

export function createEntry(opts: EntryOptions) {
  const now = opts.now ?? Date.now;
  const codes = new Map<string, Grant>();
  const sessions = new Map<string, AppSession>();

  function sweep(): void {
    const at = now();
    for (const [k, c] of codes) if (c.expiresAt <= at) codes.delete(k);
    for (const [k, s] of sessions) if (s.expiresAt <= at) sessions.delete(k);
  }

  return {
    sweep,

    /** A one-time code for `auth` to enter workspace `a`; refused when too many are outstanding. */
    issueCode(auth: Authenticated, workspaceId: string, address: WorkspaceAddress): string {
      if (codes.size >= MAX_PENDING_CODES) {
        sweep();
        if (codes.size >= MAX_PENDING_CODES) throw new TooMany('too_many_requests', 'too many workspace sign-ins in progress; try again in a minute');
      }
      const code = randomBytes(24).toString('base64url');
      codes.set(code, { auth, workspaceId, address, expiresAt: now() + CODE_TTL_MS });
      return code;
    },

    /**
     * Exchanges a code, once, for a new app session of workspace `a`: the
     * cookie value, or undefined for a code that is unknown, used, expired
     * or issued for another workspace.
     */
    redeem(code: string, a: WorkspaceAddress): string | undefined {
      const entry = codes.get(code);
      codes.delete(code);
      if (!entry || entry.expiresAt <= now() || entry.address.team !== a.team || entry.address.name !== a.name) return undefined;
      const value = randomBytes(32).toString('base64url');
      sessions.set(value, { ...entry, expiresAt: now() + opts.appSessionTtlSeconds * 1000, checkedAt: now() });
      return value;
    },

    /** Who an app cookie stands for in workspace `workspaceId`, re-checked every few seconds. */
    async session(value: string | undefined, workspaceId: string): Promise<Authenticated | undefined> {
      const s = value === undefined ? undefined : sessions.get(value);
      if (!s || s.workspaceId !== workspaceId) return undefined;
      const at = now();
      if (s.expiresAt <= at) {
        sessions.delete(value!);
        return undefined;
      }
      if (at - s.checkedAt > RECHECK_MS) {
        const fresh = await opts.recheck(s.auth);
        if (!fresh) {
          sessions.delete(value!);
          return undefined;
        }
        s.auth = fresh;
        s.checkedAt = at;
      }
      return s.auth;
    },

    /** Access changed somewhere (a membership, a session, an account): every app session is re-checked at its next request. */
    recheckAll(): void {
      for (const s of sessions.values()) s.checkedAt = 0;
    },
  };
}

export type Entry = ReturnType<typeof createEntry>;

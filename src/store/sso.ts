import type { Role } from '../domain/index.js';
import { accessChanged, teamsChanged, transaction, type StoreContext } from './common.js';
import { countOwners } from './teams.js';

/** How long a sign-in may stay at the identity provider before its state is forgotten. */
export const OIDC_LOGIN_TTL_MS = 10 * 60_000;

/** How long a CLI sign-in waits for someone to approve it in a browser. */
export const CLI_LOGIN_TTL_MS = 10 * 60_000;

/** A sign-in under way at an OpenID provider. */
export interface PendingLogin {
  state: string;
  provider: string;
  nonce: string;
  verifier: string;
  /** where to go once signed in (a path on this server) */
  next: string;
}

/** What one sign-in's groups changed in the person's memberships. */
export interface GroupSync {
  added: string[];
  changed: string[];
  removed: string[];
  /** teams a mapping names that do not exist */
  missing: string[];
}

/** Single sign-on state: sign-ins under way, and the memberships groups grant. */
export function createSsoRepo(ctx: StoreContext) {
  const { db } = ctx;
  return {
    async putLogin(p: PendingLogin): Promise<void> {
      const now = ctx.now();
      await db.deleteFrom('oidc_logins').where('created_at', '<', now - OIDC_LOGIN_TTL_MS).execute();
      await db.insertInto('oidc_logins').values({ state: p.state, provider: p.provider, nonce: p.nonce, verifier: p.verifier, next: p.next, created_at: now }).execute();
    },

    /** The sign-in of `state`, once: it is deleted as it is read, so a replayed callback finds nothing. */
    async takeLogin(state: string): Promise<PendingLogin | undefined> {
      return transaction(ctx, async (tx) => {
        const row = await tx.db.selectFrom('oidc_logins').selectAll().where('state', '=', state).executeTakeFirst();
        if (!row) return undefined;
        await tx.db.deleteFrom('oidc_logins').where('state', '=', state).execute();
        if (Number(row.created_at) < ctx.now() - OIDC_LOGIN_TTL_MS) return undefined;
        return { state: row.state, provider: row.provider, nonce: row.nonce, verifier: row.verifier, next: row.next };
      });
    },

    /** A CLI sign-in waiting for approval: `code` is what the person sees, `pollHash` the hash of what the CLI polls with. */
    async putCliLogin(l: { code: string; pollHash: string; name: string; expiresIn: number | null }): Promise<void> {
      const now = ctx.now();
      await db.deleteFrom('cli_logins').where('created_at', '<', now - CLI_LOGIN_TTL_MS).execute();
      await db.insertInto('cli_logins').values({ code: l.code, poll_hash: l.pollHash, name: l.name, expires_in: l.expiresIn, user_id: null, created_at: now }).execute();
    },

    /** Approves a waiting CLI sign-in for `userId`; false when the code is unknown, expired or approved already. */
    async approveCliLogin(code: string, userId: string): Promise<boolean> {
      const r = await db.updateTable('cli_logins').set({ user_id: userId }).where('code', '=', code).where('user_id', 'is', null).where('created_at', '>=', ctx.now() - CLI_LOGIN_TTL_MS).executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },

    /**
     * What a CLI's poll finds: `pending`, `expired` (or unknown), or the
     * approval, once: an approved sign-in is deleted as it is handed over.
     */
    async takeCliLogin(pollHash: string): Promise<{ state: 'pending' | 'expired' } | { state: 'approved'; userId: string; name: string; expiresIn: number | null }> {
      return transaction(ctx, async (tx) => {
        const row = await tx.db.selectFrom('cli_logins').selectAll().where('poll_hash', '=', pollHash).executeTakeFirst();
        if (!row || Number(row.created_at) < ctx.now() - CLI_LOGIN_TTL_MS) return { state: 'expired' as const };
        if (!row.user_id) return { state: 'pending' as const };
        await tx.db.deleteFrom('cli_logins').where('code', '=', row.code).execute();
        return { state: 'approved' as const, userId: row.user_id, name: row.name, expiresIn: row.expires_in === null ? null : Number(row.expires_in) };
      });
    },

    /**
     * Brings the memberships a provider's groups grant in line with the
     * groups of this sign-in: `wanted` team → role (and the group that grants
     * it). A membership granted by hand is never changed or removed; one a
     * group granted goes when no group grants it any more, unless it is the
     * team's last owner.
     */
    async syncGroups(userId: string, provider: string, wanted: Map<string, { role: Role; group: string }>): Promise<GroupSync> {
      const out: GroupSync = { added: [], changed: [], removed: [], missing: [] };
      const prefix = `group:${provider}:`;
      await transaction(ctx, async (tx) => {
        const current = await tx.db
          .selectFrom('memberships')
          .innerJoin('teams', 'teams.id', 'memberships.team_id')
          .select(['teams.id as team_id', 'teams.name', 'memberships.role', 'memberships.granted_by'])
          .where('memberships.user_id', '=', userId)
          .execute();
        const byTeam = new Map(current.map((m) => [m.name, m]));
        for (const [teamName, w] of wanted) {
          const grantedBy = `${prefix}${w.group}`;
          const m = byTeam.get(teamName);
          if (m) {
            if (m.granted_by === null || m.granted_by === undefined || !m.granted_by.startsWith(prefix)) continue;
            if (m.role !== w.role || m.granted_by !== grantedBy) {
              await tx.db.updateTable('memberships').set({ role: w.role, granted_by: grantedBy }).where('team_id', '=', m.team_id).where('user_id', '=', userId).execute();
              out.changed.push(teamName);
            }
            continue;
          }
          const team = await tx.db.selectFrom('teams').select('id').where('name', '=', teamName).executeTakeFirst();
          if (!team) {
            out.missing.push(teamName);
            continue;
          }
          await tx.db.insertInto('memberships').values({ team_id: team.id, user_id: userId, role: w.role, created_at: ctx.now(), granted_by: grantedBy }).execute();
          out.added.push(teamName);
        }
        for (const m of current) {
          if (!m.granted_by?.startsWith(prefix) || wanted.has(m.name)) continue;
          if (m.role === 'owner' && (await countOwners(tx.db, m.team_id)) <= 1) continue;
          await tx.db.deleteFrom('memberships').where('team_id', '=', m.team_id).where('user_id', '=', userId).execute();
          out.removed.push(m.name);
        }
      });
      if (out.added.length + out.changed.length + out.removed.length > 0) {
        accessChanged(ctx);
        teamsChanged(ctx);
      }
      return out;
    },
  };
}

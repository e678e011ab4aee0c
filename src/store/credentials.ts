import { sql, type Selectable } from 'kysely';
import { Conflict, NotFound, type Role } from '../domain/index.js';
import { accessChanged, isUniqueViolation, newId, type StoreContext } from './common.js';
import type { SshKeysTable, TokensTable } from './schema.js';
import { toUser, type User } from './users.js';

export interface SessionRecord {
  id: string;
  userId: string;
  expiresAt: number;
  lastSeenAt: number;
  /** the OpenID provider it was signed in with */
  provider: string | null;
}

export interface TokenRecord {
  id: string;
  userId: string;
  name: string;
  secretHash: string;
  createdAt: number;
  expiresAt: number | null;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

export interface SshKeyRecord {
  id: string;
  userId: string;
  name: string;
  publicKey: string;
  fingerprint: string;
  createdAt: number;
}

function toToken(r: Selectable<TokensTable>): TokenRecord {
  return {
    id: r.id,
    userId: r.user_id,
    name: r.name,
    secretHash: r.secret_hash,
    createdAt: Number(r.created_at),
    expiresAt: r.expires_at === null ? null : Number(r.expires_at),
    lastUsedAt: r.last_used_at === null ? null : Number(r.last_used_at),
    revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
  };
}

function toSshKey(r: Selectable<SshKeysTable>): SshKeyRecord {
  return { id: r.id, userId: r.user_id, name: r.name, publicKey: r.public_key, fingerprint: r.fingerprint, createdAt: Number(r.created_at) };
}

/** Sessions, API tokens and SSH keys: secrets are stored only as hashes. */
export function createCredentialsRepo(ctx: StoreContext) {
  const { db } = ctx;
  return {
    sessions: {
      async create(s: { idHash: string; userId: string; ttlSeconds: number; ip: string; userAgent: string; provider?: string | undefined }): Promise<void> {
        const now = ctx.now();
        await db
          .insertInto('sessions')
          .values({
            id: s.idHash,
            user_id: s.userId,
            created_at: now,
            expires_at: now + s.ttlSeconds * 1000,
            last_seen_at: now,
            ip: s.ip,
            user_agent: s.userAgent.slice(0, 256),
            provider: s.provider ?? null,
          })
          .execute();
      },
      async get(idHash: string): Promise<SessionRecord | undefined> {
        const r = await db.selectFrom('sessions').selectAll().where('id', '=', idHash).executeTakeFirst();
        return r && { id: r.id, userId: r.user_id, expiresAt: Number(r.expires_at), lastSeenAt: Number(r.last_seen_at), provider: r.provider ?? null };
      },
      async seen(idHash: string, at: number): Promise<void> {
        await db.updateTable('sessions').set({ last_seen_at: at }).where('id', '=', idHash).execute();
      },
      async remove(idHash: string): Promise<void> {
        await db.deleteFrom('sessions').where('id', '=', idHash).execute();
      },
      async removeExpired(): Promise<number> {
        const r = await db.deleteFrom('sessions').where('expires_at', '<', ctx.now()).executeTakeFirst();
        return Number(r.numDeletedRows);
      },
    },
    tokens: {
      async create(t: { id: string; userId: string; name: string; secretHash: string; expiresAt: number | null }): Promise<TokenRecord> {
        const row = { id: t.id, user_id: t.userId, name: t.name, secret_hash: t.secretHash, created_at: ctx.now(), expires_at: t.expiresAt, last_used_at: null, revoked_at: null };
        await db.insertInto('tokens').values(row).execute();
        return toToken(row);
      },
      async get(id: string): Promise<TokenRecord | undefined> {
        const r = await db.selectFrom('tokens').selectAll().where('id', '=', id).executeTakeFirst();
        return r && toToken(r);
      },
      /** A token with its user, in one query: the hot path of every API request. */
      /** A token with its user and the user's team roles, in one query: what authenticating a request reads. */
      async withUser(id: string): Promise<{ token: TokenRecord; user: User; roles: Map<string, Role> } | undefined> {
        // the memberships as one JSON array of [team, role] pairs beside the row
        const roles =
          ctx.dialect === 'postgres'
            ? sql<unknown>`(select coalesce(json_agg(json_build_array(m.team_id, m.role)), '[]'::json) from memberships m where m.user_id = users.id)`
            : sql<unknown>`(select json_group_array(json_array(m.team_id, m.role)) from memberships m where m.user_id = users.id)`;
        const r = await db
          .selectFrom('tokens')
          .innerJoin('users', 'users.id', 'tokens.user_id')
          .selectAll('users')
          .select(['tokens.id as token_id', 'tokens.name as token_name', 'tokens.secret_hash', 'tokens.created_at as token_created_at', 'tokens.expires_at', 'tokens.last_used_at', 'tokens.revoked_at'])
          .select(roles.as('roles'))
          .where('tokens.id', '=', id)
          .executeTakeFirst();
        if (!r) return undefined;
        // PostgreSQL's driver parses json; SQLite hands back its text
        const pairs = (typeof r.roles === 'string' ? JSON.parse(r.roles) : r.roles) as Array<[string, Role]>;
        return {
          user: toUser(r),
          token: toToken({ id: r.token_id, user_id: r.id, name: r.token_name, secret_hash: r.secret_hash, created_at: r.token_created_at, expires_at: r.expires_at, last_used_at: r.last_used_at, revoked_at: r.revoked_at }),
          roles: new Map(pairs),
        };
      },
      async list(userId: string): Promise<TokenRecord[]> {
        const rows = await db.selectFrom('tokens').selectAll().where('user_id', '=', userId).where('revoked_at', 'is', null).orderBy('created_at').execute();
        return rows.map(toToken);
      },
      async used(id: string, at: number): Promise<void> {
        await db.updateTable('tokens').set({ last_used_at: at }).where('id', '=', id).execute();
      },
      async revoke(userId: string, id: string): Promise<void> {
        const r = await db
          .updateTable('tokens')
          .set({ revoked_at: ctx.now() })
          .where('id', '=', id)
          .where('user_id', '=', userId)
          .where('revoked_at', 'is', null)
          .executeTakeFirst();
        accessChanged(ctx);
        if (Number(r.numUpdatedRows) === 0) throw new NotFound(`token ${id}`);
      },
    },
    sshKeys: {
      async add(k: { userId: string; name: string; publicKey: string; fingerprint: string }): Promise<SshKeyRecord> {
        const row = { id: newId('k'), user_id: k.userId, name: k.name, public_key: k.publicKey, fingerprint: k.fingerprint, created_at: ctx.now() };
        try {
          await db.insertInto('ssh_keys').values(row).execute();
        } catch (err) {
          if (isUniqueViolation(err)) throw new Conflict(`SSH key ${k.fingerprint} is already registered`, 'key_taken');
          throw err;
        }
        accessChanged(ctx);
        return toSshKey(row);
      },
      async list(userId: string): Promise<SshKeyRecord[]> {
        const rows = await db.selectFrom('ssh_keys').selectAll().where('user_id', '=', userId).orderBy('created_at').execute();
        return rows.map(toSshKey);
      },
      async remove(userId: string, id: string): Promise<void> {
        const r = await db.deleteFrom('ssh_keys').where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
        accessChanged(ctx);
        if (Number(r.numDeletedRows) === 0) throw new NotFound(`SSH key ${id}`);
      },
      /** The key with this fingerprint (`SHA256:…`) and the person it belongs to: who is signing in over SSH. */
      async byFingerprint(fingerprint: string): Promise<{ key: SshKeyRecord; user: User } | undefined> {
        const r = await db
          .selectFrom('ssh_keys')
          .innerJoin('users', 'users.id', 'ssh_keys.user_id')
          .selectAll('users')
          .select(['ssh_keys.id as key_id', 'ssh_keys.name as key_name', 'ssh_keys.public_key', 'ssh_keys.fingerprint', 'ssh_keys.created_at as key_created_at'])
          .where('ssh_keys.fingerprint', '=', fingerprint)
          .executeTakeFirst();
        if (!r) return undefined;
        return {
          user: toUser(r),
          key: toSshKey({ id: r.key_id, user_id: r.id, name: r.key_name, public_key: r.public_key, fingerprint: r.fingerprint, created_at: r.key_created_at }),
        };
      },
      /** Every key of every member of a team, with the member's role and account state: who may enter the team's workspaces over SSH. */
      async ofTeam(teamId: string): Promise<Array<{ userId: string; username: string; admin: boolean; disabled: boolean; role: Role; publicKey: string }>> {
        const rows = await db
          .selectFrom('memberships')
          .innerJoin('users', 'users.id', 'memberships.user_id')
          .innerJoin('ssh_keys', 'ssh_keys.user_id', 'users.id')
          .select(['users.id', 'users.username', 'users.admin', 'users.disabled', 'memberships.role', 'ssh_keys.public_key'])
          .where('memberships.team_id', '=', teamId)
          .orderBy('users.username')
          .orderBy('ssh_keys.created_at')
          .execute();
        return rows.map((r) => ({ userId: r.id, username: r.username, admin: Boolean(r.admin), disabled: Boolean(r.disabled), role: r.role as Role, publicKey: r.public_key }));
      },
    },
  };
}

export type CredentialsRepo = ReturnType<typeof createCredentialsRepo>;

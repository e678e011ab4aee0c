import type { Selectable } from 'kysely';
import { Conflict, NotFound, type Quota, type Role } from '../domain/index.js';
import {
  accessChanged,
  decodeCursor,
  isUniqueViolation,
  newId,
  page,
  transaction,
  type Executor,
  type Page,
  type StoreContext,
  type Tx,
} from './common.js';
import type { UsersTable } from './schema.js';

export interface User {
  id: string;
  username: string;
  email: string | null;
  displayName: string;
  admin: boolean;
  disabled: boolean;
  externalSubject: string | null;
  passwordHash: string | null;
  createdAt: number;
}

export function toUser(r: Selectable<UsersTable>): User {
  return {
    id: r.id,
    username: r.username,
    email: r.email,
    displayName: r.display_name,
    admin: r.admin === 1,
    disabled: r.disabled === 1,
    externalSubject: r.external_subject,
    passwordHash: r.password_hash,
    createdAt: Number(r.created_at),
  };
}

export interface NewUser {
  username: string;
  email?: string | null;
  displayName?: string;
  passwordHash?: string | null;
  admin?: boolean;
  externalSubject?: string | null;
}

/** Inserts a user with their personal team (named after them, they its owner) in the caller's transaction. */
export async function insertUserWithTeam(tx: Tx, now: number, input: NewUser, quota: Quota): Promise<User> {
  const taken = await tx.db.selectFrom('teams').select('id').where('name', '=', input.username).executeTakeFirst();
  if (taken) throw new Conflict(`the name ${input.username} is already taken by a team`, 'name_taken');
  const row = {
    id: newId('u'),
    username: input.username,
    email: input.email ?? null,
    display_name: input.displayName ?? '',
    password_hash: input.passwordHash ?? null,
    admin: input.admin ? 1 : 0,
    disabled: 0,
    external_subject: input.externalSubject ?? null,
    created_at: now,
    updated_at: now,
  };
  await tx.db.insertInto('users').values(row).execute();
  const teamId = newId('t');
  await tx.db
    .insertInto('teams')
    .values({
      id: teamId,
      name: input.username,
      display_name: input.displayName || input.username,
      personal_of: row.id,
      sensitive: 0,
      quota: JSON.stringify(quota),
      created_at: now,
      updated_at: now,
    })
    .execute();
  await tx.db.insertInto('memberships').values({ team_id: teamId, user_id: row.id, role: 'owner', created_at: now }).execute();
  return toUser(row);
}

export function createUsersRepo(ctx: StoreContext) {
  const { db } = ctx;
  const byId = (ex: Executor, id: string) => ex.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();

  return {
    async get(id: string): Promise<User | undefined> {
      const r = await byId(db, id);
      return r && toUser(r);
    },
    async byUsername(username: string): Promise<User | undefined> {
      const r = await db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
      return r && toUser(r);
    },
    async byExternalSubject(subject: string): Promise<User | undefined> {
      const r = await db.selectFrom('users').selectAll().where('external_subject', '=', subject).executeTakeFirst();
      return r && toUser(r);
    },
    async count(): Promise<number> {
      const r = await db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      return Number(r.n);
    },
    async list(opts: { limit: number; cursor?: string }): Promise<Page<User>> {
      const after = decodeCursor<string>(opts.cursor, 'string');
      let q = db.selectFrom('users').selectAll().orderBy('username').limit(opts.limit + 1);
      if (after !== undefined) q = q.where('username', '>', after);
      return page((await q.execute()).map(toUser), opts.limit, (u) => u.username);
    },

    /** Creates a user and their personal team. Refuses a username that a user or team already has. */
    async create(input: NewUser, quota: Quota): Promise<User> {
      try {
        const user = await transaction(ctx, (tx) => insertUserWithTeam(tx, ctx.now(), input, quota));
        accessChanged(ctx);
        return user;
      } catch (err) {
        if (isUniqueViolation(err)) throw new Conflict(`user ${input.username} already exists`, 'name_taken');
        throw err;
      }
    },

    /**
     * Changes a user in one transaction. Disabling also ends their sessions,
     * revokes their tokens and asks every workspace they own to stop.
     */
    async update(
      id: string,
      changes: { admin?: boolean; disabled?: boolean; passwordHash?: string; email?: string | null; displayName?: string },
    ): Promise<User> {
      return transaction(ctx, async (tx) => {
        const now = ctx.now();
        const set: Partial<UsersTable> = { updated_at: now };
        if (changes.admin !== undefined) set.admin = changes.admin ? 1 : 0;
        if (changes.disabled !== undefined) set.disabled = changes.disabled ? 1 : 0;
        if (changes.passwordHash !== undefined) set.password_hash = changes.passwordHash;
        if (changes.email !== undefined) set.email = changes.email;
        if (changes.displayName !== undefined) set.display_name = changes.displayName;
        await tx.db.updateTable('users').set(set).where('id', '=', id).execute();
        if (changes.disabled) {
          await tx.db.deleteFrom('sessions').where('user_id', '=', id).execute();
          await tx.db.updateTable('tokens').set({ revoked_at: now }).where('user_id', '=', id).where('revoked_at', 'is', null).execute();
          const running = await tx.db
            .selectFrom('workspaces')
            .select(['id', 'team_id', 'name'])
            .where('owner_id', '=', id)
            .where('desired', '=', 'running')
            .execute();
          for (const ws of running) {
            await tx.db
              .updateTable('workspaces')
              .set((eb) => ({ desired: 'stopped', updated_at: now, generation: eb('generation', '+', 1) }))
              .where('id', '=', ws.id)
              .execute();
            await tx.event({
              teamId: ws.team_id,
              workspaceId: ws.id,
              type: 'desired',
              message: "stop requested: the owner's account was disabled",
              data: { desired: 'stopped', workspace: ws.name },
            });
          }
        }
        const r = await byId(tx.db, id);
        if (!r) throw new NotFound(`user ${id}`);
        return toUser(r);
      }).finally(() => accessChanged(ctx));
    },

    /** team id → role, for every team the user belongs to. */
    async roles(userId: string): Promise<Map<string, Role>> {
      const rows = await db.selectFrom('memberships').select(['team_id', 'role']).where('user_id', '=', userId).execute();
      return new Map(rows.map((r) => [r.team_id, r.role as Role]));
    },
  };
}

export type UsersRepo = ReturnType<typeof createUsersRepo>;

import type { Selectable } from 'kysely';
import { Conflict, NotFound, type Quota, type Role, type Usage } from '../domain/index.js';
import {
  teamsChanged,
  decodeCursor,
  holdsCompute,
  isUniqueViolation,
  newId,
  page,
  transaction,
  type Executor,
  type Page,
  type StoreContext,
} from './common.js';
import type { TeamsTable } from './schema.js';

export interface Team {
  id: string;
  name: string;
  displayName: string;
  /** user id when this is someone's personal team */
  personalOf: string | null;
  sensitive: boolean;
  quota: Quota;
  createdAt: number;
}

export interface Member {
  userId: string;
  username: string;
  role: Role;
  since: number;
  /** `group:<provider>:<group>` when a sign-in's groups granted it; null when granted by hand */
  grantedBy: string | null;
}

/** How many owners a team has: the last one is never removed or demoted. */
export async function countOwners(ex: Executor, teamId: string): Promise<number> {
  const r = await ex
    .selectFrom('memberships')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('team_id', '=', teamId)
    .where('role', '=', 'owner')
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

export function toTeam(r: Selectable<TeamsTable>): Team {
  return {
    id: r.id,
    name: r.name,
    displayName: r.display_name,
    personalOf: r.personal_of,
    sensitive: r.sensitive === 1,
    quota: JSON.parse(r.quota) as Quota,
    createdAt: Number(r.created_at),
  };
}

/**
 * What a team's workspaces are charged now (design §5): compute for those
 * asked to run or still holding resources, storage and a slot for every one
 * not deleted (`chargesCompute` is the same rule in code).
 */
export async function teamUsage(ex: Executor, teamId: string): Promise<Usage> {
  const compute = await ex
    .selectFrom('workspaces')
    .select((eb) => [
      eb.fn.coalesce(eb.fn.sum<number>('cpu_limit_milli'), eb.lit(0)).as('cpu'),
      eb.fn.coalesce(eb.fn.sum<number>('memory_limit_bytes'), eb.lit(0)).as('memory'),
    ])
    .where('team_id', '=', teamId)
    .where(holdsCompute)
    .executeTakeFirstOrThrow();
  const gpus = await ex
    .selectFrom('workspaces')
    .select((eb) => ['gpu_type', eb.fn.sum<number>('gpu_count').as('n')])
    .where('team_id', '=', teamId)
    .where('gpu_count', '>', 0)
    .where(holdsCompute)
    .groupBy('gpu_type')
    .execute();
  const storage = await ex
    .selectFrom('workspaces')
    .select((eb) => [eb.fn.coalesce(eb.fn.sum<number>('storage_bytes'), eb.lit(0)).as('bytes'), eb.fn.countAll<number>().as('n')])
    .where('team_id', '=', teamId)
    .where('desired', '<>', 'deleted')
    .executeTakeFirstOrThrow();
  // the team's volumes count against its storage quota too
  const volumes = await ex
    .selectFrom('volumes')
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('size_bytes'), eb.lit(0)).as('bytes'))
    .where('team_id', '=', teamId)
    .executeTakeFirstOrThrow();
  return {
    cpuMilli: Number(compute.cpu),
    memoryBytes: Number(compute.memory),
    storageBytes: Number(storage.bytes) + Number(volumes.bytes),
    workspaces: Number(storage.n),
    gpus: Object.fromEntries(gpus.map((g) => [g.gpu_type!, Number(g.n)])),
  };
}

export function createTeamsRepo(ctx: StoreContext) {
  const { db } = ctx;

  const roleIn = (ex: Executor, teamId: string, userId: string) =>
    ex.selectFrom('memberships').select('role').where('team_id', '=', teamId).where('user_id', '=', userId).executeTakeFirst();


  return {
    async byName(name: string): Promise<Team | undefined> {
      const r = await db.selectFrom('teams').selectAll().where('name', '=', name).executeTakeFirst();
      return r && toTeam(r);
    },
    async get(id: string): Promise<Team | undefined> {
      const r = await db.selectFrom('teams').selectAll().where('id', '=', id).executeTakeFirst();
      return r && toTeam(r);
    },
    /** Teams the user belongs to (or all, for `userId` undefined), by name. */
    async list(opts: { userId?: string; limit: number; cursor?: string }): Promise<Page<Team & { role: Role | null }>> {
      const after = decodeCursor<string>(opts.cursor, 'string');
      let rows: Array<Team & { role: Role | null }>;
      if (opts.userId !== undefined) {
        let q = db
          .selectFrom('teams')
          .innerJoin('memberships', 'memberships.team_id', 'teams.id')
          .selectAll('teams')
          .select('memberships.role')
          .where('memberships.user_id', '=', opts.userId)
          .orderBy('teams.name')
          .limit(opts.limit + 1);
        if (after !== undefined) q = q.where('teams.name', '>', after);
        rows = (await q.execute()).map((r) => ({ ...toTeam(r), role: r.role as Role }));
      } else {
        let q = db.selectFrom('teams').selectAll().orderBy('name').limit(opts.limit + 1);
        if (after !== undefined) q = q.where('name', '>', after);
        rows = (await q.execute()).map((r) => ({ ...toTeam(r), role: null }));
      }
      return page(rows, opts.limit, (t) => t.name);
    },

    async create(input: { name: string; displayName?: string; sensitive?: boolean; quota: Quota; ownerId?: string }): Promise<Team> {
      const now = ctx.now();
      const row = {
        id: newId('t'),
        name: input.name,
        display_name: input.displayName ?? input.name,
        personal_of: null,
        sensitive: input.sensitive ? 1 : 0,
        quota: JSON.stringify(input.quota),
        created_at: now,
        updated_at: now,
      };
      try {
        await transaction(ctx, async (tx) => {
          const user = await tx.db.selectFrom('users').select('id').where('username', '=', input.name).executeTakeFirst();
          if (user) throw new Conflict(`the name ${input.name} is already taken by a user`, 'name_taken');
          await tx.db.insertInto('teams').values(row).execute();
          if (input.ownerId) {
            await tx.db.insertInto('memberships').values({ team_id: row.id, user_id: input.ownerId, role: 'owner', created_at: now }).execute();
          }
        });
        teamsChanged(ctx);
      } catch (err) {
        if (isUniqueViolation(err)) throw new Conflict(`team ${input.name} already exists`, 'name_taken');
        throw err;
      }
      return toTeam(row);
    },

    async update(id: string, changes: { displayName?: string; sensitive?: boolean; quota?: Quota }): Promise<Team> {
      const set: Partial<TeamsTable> = { updated_at: ctx.now() };
      if (changes.displayName !== undefined) set.display_name = changes.displayName;
      if (changes.sensitive !== undefined) set.sensitive = changes.sensitive ? 1 : 0;
      if (changes.quota !== undefined) set.quota = JSON.stringify(changes.quota);
      await db.updateTable('teams').set(set).where('id', '=', id).execute();
      const r = await db.selectFrom('teams').selectAll().where('id', '=', id).executeTakeFirst();
      if (!r) throw new NotFound(`team ${id}`);
      teamsChanged(ctx);
      return toTeam(r);
    },

    /** Deletes a team; refused while it has workspaces or is a user's personal team. */
    async remove(team: Team): Promise<void> {
      await transaction(ctx, async (tx) => {
        if (team.personalOf) throw new Conflict(`team ${team.name} is the personal team of a user and goes only with them`);
        const ws = await tx.db
          .selectFrom('workspaces')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('team_id', '=', team.id)
          .where('desired', '<>', 'deleted')
          .executeTakeFirstOrThrow();
        if (Number(ws.n) > 0) {
          throw new Conflict(`team ${team.name} still has ${ws.n} workspace(s); delete them first`, 'team_not_empty', { workspaces: Number(ws.n) });
        }
        const leftovers = await tx.db.selectFrom('workspaces').select('id').where('team_id', '=', team.id).executeTakeFirst();
        if (leftovers) throw new Conflict(`team ${team.name} has workspaces still being removed; try again shortly`, 'team_not_empty');
        const volumes = await tx.db.selectFrom('volumes').select((eb) => eb.fn.countAll<number>().as('n')).where('team_id', '=', team.id).executeTakeFirstOrThrow();
        if (Number(volumes.n) > 0) throw new Conflict(`team ${team.name} still has ${volumes.n} volume(s); delete them first`, 'team_not_empty', { volumes: Number(volumes.n) });
        await tx.db.deleteFrom('team_gids').where('team_id', '=', team.id).execute();
        await tx.db.deleteFrom('gpu_grants').where('team_id', '=', team.id).execute();
        await tx.db.updateTable('gpu_pools').set({ owner_team_id: null }).where('owner_team_id', '=', team.id).execute();
        await tx.db.deleteFrom('memberships').where('team_id', '=', team.id).execute();
        await tx.db.deleteFrom('events').where('team_id', '=', team.id).execute();
        await tx.db.deleteFrom('teams').where('id', '=', team.id).execute();
      });
      teamsChanged(ctx);
    },

    async members(teamId: string): Promise<Member[]> {
      const rows = await db
        .selectFrom('memberships')
        .innerJoin('users', 'users.id', 'memberships.user_id')
        .select(['users.id', 'users.username', 'memberships.role', 'memberships.created_at', 'memberships.granted_by'])
        .where('memberships.team_id', '=', teamId)
        .orderBy('users.username')
        .execute();
      return rows.map((r) => ({ userId: r.id, username: r.username, role: r.role as Role, since: Number(r.created_at), grantedBy: r.granted_by ?? null }));
    },

    /** Adds a member or changes their role. A team always keeps at least one owner. */
    async setMember(team: Team, userId: string, role: Role): Promise<void> {
      await transaction(ctx, async (tx) => {
        const current = await roleIn(tx.db, team.id, userId);
        if (current) {
          if (current.role === 'owner' && role !== 'owner' && (await countOwners(tx.db, team.id)) <= 1) {
            throw new Conflict(`team ${team.name} needs at least one owner`, 'last_owner');
          }
          // a role set by hand is the hand's from now on: group sync leaves it alone
          await tx.db.updateTable('memberships').set({ role, granted_by: null }).where('team_id', '=', team.id).where('user_id', '=', userId).execute();
        } else {
          await tx.db.insertInto('memberships').values({ team_id: team.id, user_id: userId, role, created_at: ctx.now() }).execute();
        }
      });
      teamsChanged(ctx);
    },

    async removeMember(team: Team, userId: string): Promise<boolean> {
      return transaction(ctx, async (tx) => {
        const current = await roleIn(tx.db, team.id, userId);
        if (!current) return false;
        if (current.role === 'owner' && (await countOwners(tx.db, team.id)) <= 1) {
          throw new Conflict(`team ${team.name} needs at least one owner`, 'last_owner');
        }
        await tx.db.deleteFrom('memberships').where('team_id', '=', team.id).where('user_id', '=', userId).execute();
        return true;
      }).finally(() => teamsChanged(ctx));
    },

    usage: (teamId: string) => teamUsage(db, teamId),
  };
}

export type TeamsRepo = ReturnType<typeof createTeamsRepo>;

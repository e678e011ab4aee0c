import type { Selectable } from 'kysely';
import { Conflict, NotFound, type PoolRoom } from '../domain/index.js';
import { holdsCompute, isUniqueViolation, newId, transaction, type Executor, type StoreContext } from './common.js';
import type { GpuPoolsTable } from './schema.js';

export interface GpuPool {
  id: string;
  name: string;
  gpuType: string;
  cluster: string;
  size: number;
  ownerTeamId: string | null;
  createdAt: number;
}

export interface GpuGrant {
  poolId: string;
  teamId: string;
  teamName: string;
  limit: number;
}

function toPool(r: Selectable<GpuPoolsTable>): GpuPool {
  return {
    id: r.id,
    name: r.name,
    gpuType: r.gpu_type,
    cluster: r.cluster,
    size: Number(r.size),
    ownerTeamId: r.owner_team_id,
    createdAt: Number(r.created_at),
  };
}

/** GPUs held per pool, counted like quota (design §5). */
async function heldByPool(ex: Executor, poolIds: string[], teamId?: string): Promise<Map<string, number>> {
  if (poolIds.length === 0) return new Map();
  let q = ex
    .selectFrom('workspaces')
    .select((eb) => ['gpu_pool_id', eb.fn.sum<number>('gpu_count').as('n')])
    .where('gpu_pool_id', 'in', poolIds)
    .where(holdsCompute)
    .groupBy('gpu_pool_id');
  if (teamId) q = q.where('team_id', '=', teamId);
  const rows = await q.execute();
  return new Map(rows.map((r) => [r.gpu_pool_id!, Number(r.n)]));
}

/**
 * Pools of a GPU type that a team owns or holds a grant on, with the room
 * admission needs. On PostgreSQL the pool rows are locked so that concurrent
 * admissions of different teams into one pool serialize.
 */
export async function poolRoomForTeam(ex: Executor, dialect: 'sqlite' | 'postgres', teamId: string, gpuType: string, cluster?: string): Promise<Array<PoolRoom & { id: string }>> {
  let q = ex
    .selectFrom('gpu_pools')
    .leftJoin('gpu_grants', (j) => j.onRef('gpu_grants.pool_id', '=', 'gpu_pools.id').on('gpu_grants.team_id', '=', teamId))
    .select(['gpu_pools.id', 'gpu_pools.name', 'gpu_pools.size', 'gpu_pools.owner_team_id', 'gpu_grants.gpu_limit'])
    .where('gpu_pools.gpu_type', '=', gpuType)
    .where((eb) => eb.or([eb('gpu_pools.owner_team_id', '=', teamId), eb('gpu_grants.team_id', '=', teamId)]))
    .orderBy('gpu_pools.name');
  // a pool's GPUs are on one cluster: only that cluster's pools serve a workspace placed there
  if (cluster !== undefined) q = q.where('gpu_pools.cluster', '=', cluster);
  if (dialect === 'postgres') q = q.forUpdate('gpu_pools');
  const pools = await q.execute();
  const ids = pools.map((p) => p.id);
  const used = await heldByPool(ex, ids);
  const teamUsed = await heldByPool(ex, ids, teamId);
  return pools.map((p) => ({
    id: p.id,
    name: p.name,
    gpuType,
    size: Number(p.size),
    used: used.get(p.id) ?? 0,
    grant: p.owner_team_id === teamId ? Number(p.size) : Number(p.gpu_limit ?? 0),
    teamUsed: teamUsed.get(p.id) ?? 0,
  }));
}

export function createPoolsRepo(ctx: StoreContext) {
  const { db } = ctx;
  return {
    async list(): Promise<Array<GpuPool & { used: number }>> {
      const pools = (await db.selectFrom('gpu_pools').selectAll().orderBy('name').execute()).map(toPool);
      const used = await heldByPool(db, pools.map((p) => p.id));
      return pools.map((p) => ({ ...p, used: used.get(p.id) ?? 0 }));
    },
    async byName(name: string): Promise<GpuPool | undefined> {
      const r = await db.selectFrom('gpu_pools').selectAll().where('name', '=', name).executeTakeFirst();
      return r && toPool(r);
    },
    async used(poolId: string): Promise<number> {
      return (await heldByPool(db, [poolId])).get(poolId) ?? 0;
    },
    async create(input: { name: string; gpuType: string; cluster: string; size: number; ownerTeamId: string | null }): Promise<GpuPool> {
      const now = ctx.now();
      const row = {
        id: newId('p'),
        name: input.name,
        gpu_type: input.gpuType,
        cluster: input.cluster,
        size: input.size,
        owner_team_id: input.ownerTeamId,
        created_at: now,
        updated_at: now,
      };
      try {
        await db.insertInto('gpu_pools').values(row).execute();
      } catch (err) {
        if (isUniqueViolation(err)) throw new Conflict(`GPU pool ${input.name} already exists`, 'name_taken');
        throw err;
      }
      return toPool(row);
    },
    async update(pool: GpuPool, changes: { size?: number; ownerTeamId?: string | null }): Promise<GpuPool> {
      const set: Partial<GpuPoolsTable> = { updated_at: ctx.now() };
      if (changes.size !== undefined) set.size = changes.size;
      if (changes.ownerTeamId !== undefined) set.owner_team_id = changes.ownerTeamId;
      await db.updateTable('gpu_pools').set(set).where('id', '=', pool.id).execute();
      const r = await db.selectFrom('gpu_pools').selectAll().where('id', '=', pool.id).executeTakeFirst();
      if (!r) throw new NotFound(`GPU pool ${pool.name}`);
      return toPool(r);
    },
    /** Removes a pool; refused while any workspace, running or not, draws on it. */
    async remove(pool: GpuPool): Promise<void> {
      await transaction(ctx, async (tx) => {
        const inUse = await tx.db.selectFrom('workspaces').select('id').where('gpu_pool_id', '=', pool.id).executeTakeFirst();
        if (inUse) throw new Conflict(`GPU pool ${pool.name} is referenced by workspaces`, 'pool_in_use');
        await tx.db.deleteFrom('gpu_grants').where('pool_id', '=', pool.id).execute();
        await tx.db.deleteFrom('gpu_pools').where('id', '=', pool.id).execute();
      });
    },
    async grants(poolId: string): Promise<GpuGrant[]> {
      const rows = await db
        .selectFrom('gpu_grants')
        .innerJoin('teams', 'teams.id', 'gpu_grants.team_id')
        .select(['gpu_grants.pool_id', 'gpu_grants.team_id', 'teams.name', 'gpu_grants.gpu_limit'])
        .where('gpu_grants.pool_id', '=', poolId)
        .orderBy('teams.name')
        .execute();
      return rows.map((r) => ({ poolId: r.pool_id, teamId: r.team_id, teamName: r.name, limit: Number(r.gpu_limit) }));
    },
    async setGrant(poolId: string, teamId: string, limit: number): Promise<void> {
      await transaction(ctx, async (tx) => {
        const updated = await tx.db
          .updateTable('gpu_grants')
          .set({ gpu_limit: limit })
          .where('pool_id', '=', poolId)
          .where('team_id', '=', teamId)
          .executeTakeFirst();
        if (Number(updated.numUpdatedRows) === 0) {
          await tx.db.insertInto('gpu_grants').values({ pool_id: poolId, team_id: teamId, gpu_limit: limit, created_at: ctx.now() }).execute();
        }
      });
    },
    async removeGrant(poolId: string, teamId: string): Promise<boolean> {
      const r = await db.deleteFrom('gpu_grants').where('pool_id', '=', poolId).where('team_id', '=', teamId).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    },
  };
}

export type PoolsRepo = ReturnType<typeof createPoolsRepo>;

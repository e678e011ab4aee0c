import { sql } from 'kysely';
import { admit, NotFound, type Placement, type Profile } from '../domain/index.js';
import { holdsCompute, type Tx } from './common.js';
import { poolRoomForTeam } from './pools.js';
import { teamUsage, toTeam, type Team } from './teams.js';

/** The machine or cluster a workspace would be placed on, without what already runs there (read in the transaction). */
export type Machine = Omit<Placement, 'guaranteed'>;

/**
 * PostgreSQL advisory lock key (`pg_advisory_xact_lock`) that makes placement
 * decisions take turns. Placement checks a machine against what every team's
 * workspaces guarantee, so the per-team row lock of {@link lockTeam} cannot
 * serialize it; this lock, held until the admitting transaction ends, can.
 *
 * The value is arbitrary; it only has to differ from the other advisory keys
 * of this store: host uid allocation takes 727101 (host-uids.ts), and the
 * per-team event locks in common.ts take `hashtext(team id)`, which meets this
 * key only by chance. Never reuse it for another purpose.
 */
const PLACEMENT_LOCK_KEY = 727100;

/**
 * Serializes admissions per team. SQLite runs one transaction at a time on its
 * single connection, so only PostgreSQL needs the row lock.
 */
async function lockTeam(tx: Tx, dialect: 'sqlite' | 'postgres', teamId: string): Promise<Team> {
  let q = tx.db.selectFrom('teams').selectAll().where('id', '=', teamId);
  if (dialect === 'postgres') q = q.forUpdate();
  const row = await q.executeTakeFirst();
  if (!row) throw new NotFound(`team ${teamId}`);
  return toTeam(row);
}

/**
 * What every workspace that holds compute guarantees, across all teams. On
 * PostgreSQL an advisory lock makes placement decisions one at a time, since
 * they span teams (SQLite runs one transaction at a time anyway).
 */
async function guaranteed(tx: Tx, dialect: 'sqlite' | 'postgres'): Promise<Placement['guaranteed']> {
  if (dialect === 'postgres') await sql`select pg_advisory_xact_lock(${sql.lit(PLACEMENT_LOCK_KEY)})`.execute(tx.db);
  const r = await tx.db
    .selectFrom('workspaces')
    .select((eb) => [
      eb.fn.coalesce(eb.fn.sum<number>('cpu_request_milli'), eb.lit(0)).as('cpu'),
      eb.fn.coalesce(eb.fn.sum<number>('memory_request_bytes'), eb.lit(0)).as('memory'),
    ])
    .where(holdsCompute)
    .executeTakeFirstOrThrow();
  return { cpuMilli: Number(r.cpu), memoryBytes: Number(r.memory) };
}

/**
 * Admission for one workspace against a locked, fresh view of its team (and of
 * the machine, when placed). Call it inside the transaction that records the
 * workspace: the team stays locked, and on PostgreSQL a placement holds
 * {@link PLACEMENT_LOCK_KEY}, until that transaction ends. Throws
 * `AdmissionRefused` when quota, grants, isolation or placement say no, and
 * `NotFound` for a team that does not exist.
 *
 * @param charge what the workspace would newly hold: compute (it is to run) and/or storage (it is new)
 * @param machine where it would run, for the placement check; undefined skips placement
 * @returns the locked team and the GPU pool columns to record on the workspace row
 */
export async function admitIn(
  tx: Tx,
  dialect: 'sqlite' | 'postgres',
  teamId: string,
  profile: Profile,
  charge: { compute: boolean; storage: boolean },
  machine: Machine | undefined,
) {
  const team = await lockTeam(tx, dialect, teamId);
  const usage = await teamUsage(tx.db, team.id);
  const gpuType = profile.resources.gpuType;
  const pools = charge.compute && gpuType && profile.resources.gpuCount > 0 ? await poolRoomForTeam(tx.db, dialect, team.id, gpuType) : [];
  const placement = machine && { ...machine, guaranteed: charge.compute ? await guaranteed(tx, dialect) : { cpuMilli: 0, memoryBytes: 0 } };
  const decision = admit({ team, profile, usage, charge, pools, ...(placement ? { placement } : {}) });
  const pool = pools.find((p) => p.name === decision.gpuPool);
  return { team, pool: { gpu_pool_id: pool?.id ?? null, gpu_pool_name: pool?.name ?? null } };
}

import { sql } from 'kysely';
import { admit, AdmissionRefused, NotFound, type Placement, type Profile } from '../domain/index.js';
import { holdsCompute, type Tx } from './common.js';
import { poolRoomForTeam } from './pools.js';
import { teamUsage, toTeam, type Team } from './teams.js';

/**
 * A machine or cluster a workspace can be placed on, without what already
 * runs there (read in the transaction). `cluster` names a Kubernetes cluster
 * of the config; this machine's local runtime has none.
 */
export type Machine = Omit<Placement, 'guaranteed'> & { cluster?: string };

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
export async function lockTeam(tx: Tx, dialect: 'sqlite' | 'postgres', teamId: string): Promise<Team> {
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
async function guaranteed(tx: Tx, dialect: 'sqlite' | 'postgres', cluster: string | undefined): Promise<Placement['guaranteed']> {
  if (dialect === 'postgres') await sql`select pg_advisory_xact_lock(${sql.lit(PLACEMENT_LOCK_KEY)})`.execute(tx.db);
  let q = tx.db
    .selectFrom('workspaces')
    .select((eb) => [
      eb.fn.coalesce(eb.fn.sum<number>('cpu_request_milli'), eb.lit(0)).as('cpu'),
      eb.fn.coalesce(eb.fn.sum<number>('memory_request_bytes'), eb.lit(0)).as('memory'),
    ])
    .where(holdsCompute);
  if (cluster !== undefined) q = q.where('cluster', '=', cluster);
  const r = await q.executeTakeFirstOrThrow();
  return { cpuMilli: Number(r.cpu), memoryBytes: Number(r.memory) };
}

/**
 * Admission for one workspace against a locked, fresh view of its team (and of
 * the machines, when placed). Call it inside the transaction that records the
 * workspace: the team stays locked, and on PostgreSQL a placement holds
 * {@link PLACEMENT_LOCK_KEY}, until that transaction ends. Throws
 * `AdmissionRefused` when quota, grants, isolation or placement say no, and
 * `NotFound` for a team that does not exist.
 *
 * Placement: a workspace that has a cluster stays on it (its home lives
 * there); a new one goes where the team's grants and the capacity allow,
 * the machine with the most CPU not yet guaranteed first. Where no machine
 * can take it, the refusal is the first machine's.
 *
 * @param charge what the workspace would newly hold: compute (it is to run) and/or storage (it is new)
 * @param where the machines it may go to (none: no placement check), and the cluster it already has
 * @returns the locked team, the GPU pool columns to record on the workspace row, and the cluster chosen
 */
export async function admitIn(
  tx: Tx,
  dialect: 'sqlite' | 'postgres',
  teamId: string,
  profile: Profile,
  charge: { compute: boolean; storage: boolean },
  where: { machines: Machine[]; cluster?: string | undefined },
) {
  const team = await lockTeam(tx, dialect, teamId);
  const usage = await teamUsage(tx.db, team.id);
  const gpuType = profile.resources.gpuType;
  const wantsGpu = charge.compute && gpuType !== null && profile.resources.gpuCount > 0;
  const fixed = where.cluster ? where.machines.filter((m) => m.cluster === where.cluster) : where.machines;
  if (where.cluster && fixed.length === 0 && where.machines.length > 0) {
    throw new AdmissionRefused('tier_unavailable', `workspace's cluster ${where.cluster} is not configured any more; its home is there`, { cluster: where.cluster });
  }
  const candidates: Array<{ machine: Machine | undefined; placement?: Placement }> = [];
  for (const m of fixed) {
    const g = charge.compute ? await guaranteed(tx, dialect, m.cluster) : { cpuMilli: 0, memoryBytes: 0 };
    candidates.push({ machine: m, placement: { ...m, guaranteed: g } });
  }
  candidates.sort((a, b) => free(b.placement!) - free(a.placement!));
  if (candidates.length === 0) candidates.push({ machine: undefined });
  let refusal: unknown;
  for (const c of candidates) {
    const pools = wantsGpu ? await poolRoomForTeam(tx.db, dialect, team.id, gpuType, c.machine?.cluster) : [];
    try {
      const decision = admit({ team, profile, usage, charge, pools, ...(c.placement ? { placement: c.placement } : {}) });
      const pool = pools.find((p) => p.name === decision.gpuPool);
      return { team, pool: { gpu_pool_id: pool?.id ?? null, gpu_pool_name: pool?.name ?? null }, cluster: c.machine?.cluster ?? '' };
    } catch (err) {
      if (!(err instanceof AdmissionRefused)) throw err;
      refusal ??= err;
    }
  }
  throw refusal;
}

function free(p: Placement): number {
  return p.allocatable.cpuMilli - p.guaranteed.cpuMilli;
}

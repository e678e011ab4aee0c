import { sql, type Selectable } from 'kysely';
import {
  admit,
  canTransition,
  Conflict,
  NotFound,
  type DesiredState,
  type Phase,
  type Placement,
  type Profile,
  type WorkspaceResources,
} from '../domain/index.js';
import {
  compiledByShape,
  decodeCursor,
  holdsCompute,
  isUniqueViolation,
  newId,
  page,
  transaction,
  type Executor,
  type Page,
  type SqlText,
  type StoreContext,
  type StoredEvent,
  type Tx,
} from './common.js';
import { poolRoomForTeam } from './pools.js';
import type { WorkspacesTable } from './schema.js';
import { teamUsage, toTeam, type Team } from './teams.js';

/** What a workspace runs, copied from its profile when it was created. */
export interface WorkspaceSettings {
  environment: Profile['environment'];
  image?: string;
  tier: Profile['tier'];
  egress: Profile['egress'];
  idleTimeoutSeconds: number | null;
  /** absent in workspaces created before profiles had the setting: off */
  agentForwarding?: boolean;
}

export interface Workspace {
  id: string;
  teamId: string;
  team: string;
  name: string;
  ownerId: string;
  owner: string;
  profile: string;
  shared: boolean;
  desired: DesiredState;
  phase: Phase;
  reason: string;
  resources: WorkspaceResources;
  gpuPoolId: string | null;
  /** name of the GPU pool its GPUs come from */
  gpuPool: string | null;
  spec: WorkspaceSettings;
  purge: boolean;
  generation: number;
  observedGeneration: number;
  createdAt: number;
  updatedAt: number;
  startedAt: number | null;
  lastActivityAt: number | null;
}

/** What lists show of a workspace: all that `workspaceView` reads, none of the reconciler's bookkeeping. */
export type WorkspaceSummary = Omit<Workspace, 'teamId' | 'ownerId' | 'gpuPoolId' | 'purge' | 'generation' | 'observedGeneration'>;

/** The columns a summary is read from: lists read 22 fields per row instead of 32. */
const SUMMARY_COLUMNS = [
  'workspaces.id',
  'workspaces.team_name',
  'workspaces.name',
  'workspaces.owner_name',
  'workspaces.profile',
  'workspaces.shared',
  'workspaces.desired',
  'workspaces.phase',
  'workspaces.reason',
  'workspaces.cpu_request_milli',
  'workspaces.cpu_limit_milli',
  'workspaces.memory_request_bytes',
  'workspaces.memory_limit_bytes',
  'workspaces.gpu_count',
  'workspaces.gpu_type',
  'workspaces.gpu_pool_name',
  'workspaces.storage_bytes',
  'workspaces.spec',
  'workspaces.created_at',
  'workspaces.updated_at',
  'workspaces.started_at',
  'workspaces.last_activity_at',
] as const;

type SummaryColumn = (typeof SUMMARY_COLUMNS)[number] extends `workspaces.${infer C}` ? C : never;
type SummaryRow = Pick<Selectable<WorkspacesTable>, SummaryColumn>;
type Row = Selectable<WorkspacesTable>;

function toSummary(r: SummaryRow): WorkspaceSummary {
  return {
    id: r.id,
    team: r.team_name,
    name: r.name,
    owner: r.owner_name,
    profile: r.profile,
    shared: r.shared === 1,
    desired: r.desired as DesiredState,
    phase: r.phase as Phase,
    reason: r.reason,
    resources: {
      cpuRequestMilli: Number(r.cpu_request_milli),
      cpuLimitMilli: Number(r.cpu_limit_milli),
      memoryRequestBytes: Number(r.memory_request_bytes),
      memoryLimitBytes: Number(r.memory_limit_bytes),
      gpuCount: Number(r.gpu_count),
      gpuType: r.gpu_type,
      storageBytes: Number(r.storage_bytes),
    },
    gpuPool: r.gpu_pool_name,
    spec: JSON.parse(r.spec) as WorkspaceSettings,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    startedAt: r.started_at === null ? null : Number(r.started_at),
    lastActivityAt: r.last_activity_at === null ? null : Number(r.last_activity_at),
  };
}

function toWorkspace(r: Row): Workspace {
  return {
    ...toSummary(r),
    teamId: r.team_id,
    ownerId: r.owner_id,
    gpuPoolId: r.gpu_pool_id,
    purge: r.purge === 1,
    generation: Number(r.generation),
    observedGeneration: Number(r.observed_generation),
  };
}

/**
 * Builds a row object from an array row in one object literal, compiled once
 * per column list: how list queries turn array rows (both databases) into
 * the row shape `toSummary` reads, without a property-by-property loop per row.
 */
const rowBuilders = new Map<string, (a: unknown[]) => SummaryRow>();
function rowBuilder(columns: string[]): (a: unknown[]) => SummaryRow {
  const key = columns.join(',');
  let build = rowBuilders.get(key);
  if (!build) {
    // column names come from our own SQL (Kysely-built, fixed), never from input
    build = new Function('a', `return {${columns.map((c, i) => `${JSON.stringify(c)}: a[${i}]`).join(', ')}};`) as (a: unknown[]) => SummaryRow;
    rowBuilders.set(key, build);
  }
  return build;
}

function selectSummaries(ex: Executor) {
  return ex.selectFrom('workspaces').select(SUMMARY_COLUMNS);
}

function selectWorkspaces(ex: Executor) {
  return ex.selectFrom('workspaces').selectAll('workspaces');
}

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

/** The machine or cluster a workspace would be placed on, without what already runs there (read in the transaction). */
export type Machine = Omit<Placement, 'guaranteed'>;

/**
 * What every workspace that holds compute guarantees, across all teams. On
 * PostgreSQL an advisory lock makes placement decisions one at a time, since
 * they span teams (SQLite runs one transaction at a time anyway).
 */
async function guaranteed(tx: Tx, dialect: 'sqlite' | 'postgres'): Promise<Placement['guaranteed']> {
  if (dialect === 'postgres') await sql`select pg_advisory_xact_lock(727100)`.execute(tx.db);
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

/** Admission for one workspace against a locked, fresh view of its team (and of the machine, when placed). */
async function admitIn(tx: Tx, dialect: 'sqlite' | 'postgres', teamId: string, profile: Profile, charge: { compute: boolean; storage: boolean }, machine: Machine | undefined) {
  const team = await lockTeam(tx, dialect, teamId);
  const usage = await teamUsage(tx.db, team.id);
  const gpuType = profile.resources.gpuType;
  const pools = charge.compute && gpuType && profile.resources.gpuCount > 0 ? await poolRoomForTeam(tx.db, dialect, team.id, gpuType) : [];
  const placement = machine && { ...machine, guaranteed: charge.compute ? await guaranteed(tx, dialect) : { cpuMilli: 0, memoryBytes: 0 } };
  const decision = admit({ team, profile, usage, charge, pools, ...(placement ? { placement } : {}) });
  const pool = pools.find((p) => p.name === decision.gpuPool);
  return { team, pool: { gpu_pool_id: pool?.id ?? null, gpu_pool_name: pool?.name ?? null } };
}

export interface NewWorkspace {
  teamId: string;
  /** the user creating it, who owns it */
  owner: { id: string; username: string };
  name: string;
  profile: Profile;
  shared: boolean;
  start: boolean;
  /** where it would run, for the placement check; absent when no runtime places workspaces */
  machine?: Machine;
}

export function createWorkspacesRepo(ctx: StoreContext) {
  const { db, dialect } = ctx;

  /** Runs a summary list query with array rows. */
  async function fetchList(q: SqlText): Promise<WorkspaceSummary[]> {
    const { columns, rows } = await ctx.raw(q.sql, q.parameters);
    const build = rowBuilder(columns);
    return rows.map((a) => toSummary(build(a)));
  }

  const teamList = compiledByShape<{ owner: boolean; after: boolean; limit: number }, { teamId: string; ownerId: string; after: string }>(
    ['teamId', 'ownerId', 'after'],
    (s, v) => {
      let q = selectSummaries(db).where('workspaces.team_id', '=', v.teamId).where('workspaces.deleted_at', 'is', null).orderBy('workspaces.name').limit(s.limit);
      if (s.owner) q = q.where('workspaces.owner_id', '=', v.ownerId);
      if (s.after) q = q.where('workspaces.name', '>', v.after);
      return q;
    },
  );

  const visibleList = compiledByShape<
    { member: boolean; owner: boolean; gpu: boolean; after: boolean; limit: number },
    { userId: string; ownerId: string; afterTeam: string; afterName: string }
  >(['userId', 'ownerId', 'afterTeam', 'afterName'], (s, v) => {
    let q = selectSummaries(db).where('workspaces.deleted_at', 'is', null).orderBy('workspaces.team_name').orderBy('workspaces.name').limit(s.limit);
    if (s.member) {
      const member = sql<boolean>`${sql.ref('workspaces.team_id')} in ${db.selectFrom('memberships').select('team_id').where('user_id', '=', v.userId)}`;
      // With an owner, the owner's index is read in list order and the membership test filters its rows, so the
      // scan stops at the page's end. As a plain condition, PostgreSQL's plan for the named statement (made for an
      // average owner's dozen rows) joined the test to the team index and sorted instead: ~35% more of its CPU per page.
      // `is true` keeps it a filter; both sides are never null, so it selects the same rows.
      q = q.where(s.owner ? sql<boolean>`(${member}) is true` : member);
    }
    if (s.owner) q = q.where('workspaces.owner_id', '=', v.ownerId);
    if (s.gpu) q = q.where('workspaces.gpu_pool_id', 'is not', null).where(holdsCompute);
    if (s.after) q = q.where((eb) => eb(eb.refTuple('workspaces.team_name', 'workspaces.name'), '>', eb.tuple(v.afterTeam, v.afterName)));
    return q;
  });

  async function byId(ex: Executor, id: string): Promise<Workspace | undefined> {
    const r = await selectWorkspaces(ex).where('workspaces.id', '=', id).executeTakeFirst();
    return r && toWorkspace(r);
  }

  async function changeDesired(tx: Tx, ws: Workspace, desired: DesiredState, message: string, extra: Partial<WorkspacesTable> = {}) {
    const now = ctx.now();
    await tx.db
      .updateTable('workspaces')
      .set((eb) => ({ desired, updated_at: now, generation: eb('generation', '+', 1), ...extra }))
      .where('id', '=', ws.id)
      .execute();
    await tx.event({ teamId: ws.teamId, workspaceId: ws.id, type: 'desired', message, data: { desired, workspace: ws.name } });
  }

  return {
    get: (id: string) => byId(db, id),

    async byName(teamId: string, name: string): Promise<Workspace | undefined> {
      const r = await selectWorkspaces(db)
        .where('workspaces.team_id', '=', teamId)
        .where('workspaces.name', '=', name)
        .where('workspaces.deleted_at', 'is', null)
        .executeTakeFirst();
      return r && toWorkspace(r);
    },

    async listTeam(teamId: string, opts: { limit: number; cursor?: string; ownerId?: string }): Promise<Page<WorkspaceSummary>> {
      const after = decodeCursor<string>(opts.cursor, 'string');
      const q = teamList({ owner: Boolean(opts.ownerId), after: after !== undefined, limit: opts.limit + 1 }, { teamId, ownerId: opts.ownerId, after });
      return page(await fetchList(q), opts.limit, (w) => w.name);
    },

    /** Workspaces in every team the user belongs to (or every team, for `userId` undefined), by team then name. */
    async listVisible(opts: { userId?: string; ownerId?: string; holdsGpu?: boolean; limit: number; cursor?: string }): Promise<Page<WorkspaceSummary>> {
      const after = decodeCursor<string>(opts.cursor, 'string');
      const [afterTeam, afterName = ''] = after === undefined ? [] : after.split('/');
      const q = visibleList(
        { member: opts.userId !== undefined, owner: Boolean(opts.ownerId), gpu: Boolean(opts.holdsGpu), after: after !== undefined, limit: opts.limit + 1 },
        { userId: opts.userId, ownerId: opts.ownerId, afterTeam, afterName },
      );
      return page(await fetchList(q), opts.limit, (w) => `${w.team}/${w.name}`);
    },

    /**
     * Admits and records a new workspace in one transaction: quota, grants and
     * isolation are checked against the team's current usage while the team is
     * locked, so concurrent creates can never overshoot.
     */
    async create(input: NewWorkspace): Promise<Workspace> {
      try {
        return await transaction(ctx, async (tx) => {
          const { team, pool } = await admitIn(tx, dialect, input.teamId, input.profile, { compute: input.start, storage: true }, input.machine);
          const now = ctx.now();
          const p = input.profile;
          const spec: WorkspaceSettings = {
            environment: p.environment,
            ...(p.image === undefined ? {} : { image: p.image }),
            tier: p.tier,
            egress: p.egress,
            idleTimeoutSeconds: p.idleTimeoutSeconds,
            agentForwarding: p.agentForwarding,
          };
          const id = newId('w');
          await tx.db
            .insertInto('workspaces')
            .values({
              id,
              team_id: team.id,
              team_name: team.name,
              name: input.name,
              owner_id: input.owner.id,
              owner_name: input.owner.username,
              profile: p.name,
              shared: input.shared ? 1 : 0,
              desired: input.start ? 'running' : 'stopped',
              phase: 'pending',
              reason: '',
              cpu_request_milli: p.resources.cpuRequestMilli,
              cpu_limit_milli: p.resources.cpuLimitMilli,
              memory_request_bytes: p.resources.memoryRequestBytes,
              memory_limit_bytes: p.resources.memoryLimitBytes,
              gpu_count: p.resources.gpuCount,
              gpu_type: p.resources.gpuType,
              ...pool,
              storage_bytes: p.resources.storageBytes,
              spec: JSON.stringify(spec),
              purge: 0,
              generation: 1,
              observed_generation: 0,
              created_at: now,
              updated_at: now,
              started_at: null,
              last_activity_at: null,
              deleted_at: null,
            })
            .execute();
          await tx.event({
            teamId: team.id,
            workspaceId: id,
            type: 'created',
            message: `workspace ${team.name}/${input.name} created from profile ${p.name}`,
            data: { workspace: input.name, profile: p.name, desired: input.start ? 'running' : 'stopped' },
          });
          return (await byId(tx.db, id))!;
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw new Conflict(`workspace ${input.name} already exists in this team`, 'name_taken');
        throw err;
      }
    },

    /** Asks a workspace to run, admitting its compute again (storage is already held). Idempotent. */
    async start(ws: Workspace, profile: Profile, machine?: Machine): Promise<Workspace> {
      return transaction(ctx, async (tx) => {
        const current = (await byId(tx.db, ws.id)) ?? ws;
        if (current.desired === 'running' && current.phase !== 'failed') return current;
        const { pool } = await admitIn(tx, dialect, ws.teamId, profile, { compute: true, storage: false }, machine);
        const phase: Phase = current.phase === 'stopped' || current.phase === 'failed' ? 'pending' : current.phase;
        await changeDesired(tx, current, 'running', `start requested`, { phase, reason: '', ...pool });
        return (await byId(tx.db, ws.id))!;
      });
    },

    /** Asks a workspace to stop; the home is kept. Idempotent. */
    async stop(ws: Workspace, why = 'stop requested'): Promise<Workspace> {
      return transaction(ctx, async (tx) => {
        const current = (await byId(tx.db, ws.id)) ?? ws;
        if (current.desired !== 'stopped') await changeDesired(tx, current, 'stopped', why);
        return (await byId(tx.db, ws.id))!;
      });
    },

    /** Marks a workspace deleted: it stops counting against quota at once and its name is free again. */
    async remove(ws: Workspace, purge: boolean): Promise<void> {
      await transaction(ctx, async (tx) => {
        await changeDesired(tx, ws, 'deleted', purge ? 'delete requested, home to be purged' : 'delete requested, home kept', {
          deleted_at: ctx.now(),
          purge: purge ? 1 : 0,
        });
      });
    },

    async setShared(ws: Workspace, shared: boolean): Promise<Workspace> {
      await db.updateTable('workspaces').set({ shared: shared ? 1 : 0, updated_at: ctx.now() }).where('id', '=', ws.id).execute();
      return (await byId(db, ws.id))!;
    },
  };
}

export type WorkspacesRepo = ReturnType<typeof createWorkspacesRepo>;

/** A phase change reported by a runtime. */
export interface PhaseReport {
  phase: Phase;
  reason?: string;
  message: string;
  data?: Record<string, unknown>;
  /** the generation of desired state this report acts on */
  observedGeneration?: number;
}

/**
 * The interface the reconciler and runtimes use to read desired state and
 * write observed phase and events. It is the only way they touch workspaces,
 * so the API's records of intent and the runtimes' reports never collide.
 */
export interface WorkspaceStates {
  /** Workspaces whose observed phase may not match their desired state yet. */
  unsettled(): Promise<Workspace[]>;
  /** Workspaces the runtime reports running (for the idle culler), by id, `limit` at a time after `afterId`. */
  running(opts: { afterId?: string; limit: number }): Promise<Workspace[]>;
  get(id: string): Promise<Workspace | undefined>;
  /** Records a phase change and its event in one transaction; refuses impossible transitions. */
  report(id: string, report: PhaseReport): Promise<Workspace>;
  /** Records an event that does not change the phase (a step, a warning). */
  note(id: string, type: string, message: string, data?: Record<string, unknown>): Promise<StoredEvent>;
  /** Records the latest activity time (batched by the caller; not one write per request). */
  touch(id: string, at: number): Promise<void>;
  /** Deletes a workspace row once its runtime has removed everything of it. */
  forget(id: string): Promise<void>;
  /** Calls `listener` with a workspace id whenever it is created or its desired state changes; returns an unsubscribe function. */
  onIntent(listener: (workspaceId: string) => void): () => void;
}

export function createWorkspaceStates(ctx: StoreContext): WorkspaceStates {
  const get = async (ex: Executor, id: string) => {
    const r = await selectWorkspaces(ex).where('workspaces.id', '=', id).executeTakeFirst();
    return r && toWorkspace(r);
  };
  return {
    async unsettled() {
      const rows = await selectWorkspaces(ctx.db)
        .where((eb) =>
          eb.or([
            eb('workspaces.generation', '<>', eb.ref('workspaces.observed_generation')),
            eb.and([eb('workspaces.desired', '=', 'running'), eb('workspaces.phase', '<>', 'running')]),
            eb.and([eb('workspaces.desired', '<>', 'running'), eb('workspaces.phase', 'in', ['starting', 'running', 'stopping'])]),
            eb('workspaces.desired', '=', 'deleted'),
          ]),
        )
        .orderBy('workspaces.updated_at')
        .execute();
      return rows.map(toWorkspace);
    },
    get: (id) => get(ctx.db, id),
    async running(opts) {
      let q = selectWorkspaces(ctx.db).where('workspaces.phase', '=', 'running').orderBy('workspaces.id').limit(opts.limit);
      if (opts.afterId !== undefined) q = q.where('workspaces.id', '>', opts.afterId);
      return (await q.execute()).map(toWorkspace);
    },
    async report(id, report) {
      return transaction(ctx, async (tx) => {
        const ws = await get(tx.db, id);
        if (!ws) throw new NotFound(`workspace ${id}`);
        if (!canTransition(ws.phase, report.phase)) {
          throw new Conflict(`workspace ${ws.team}/${ws.name} cannot go from ${ws.phase} to ${report.phase}`, 'invalid_transition');
        }
        const now = ctx.now();
        await tx.db
          .updateTable('workspaces')
          .set({
            phase: report.phase,
            reason: report.reason ?? '',
            updated_at: now,
            ...(report.observedGeneration === undefined ? {} : { observed_generation: report.observedGeneration }),
            ...(report.phase === 'running' && ws.phase !== 'running' ? { started_at: now } : {}),
          })
          .where('id', '=', id)
          .execute();
        await tx.event({
          teamId: ws.teamId,
          workspaceId: id,
          type: 'phase',
          message: report.message,
          data: { ...report.data, workspace: ws.name, phase: report.phase, from: ws.phase, ...(report.reason ? { reason: report.reason } : {}) },
        });
        return (await get(tx.db, id))!;
      });
    },
    async note(id, type, message, data = {}) {
      return transaction(ctx, async (tx) => {
        const ws = await get(tx.db, id);
        if (!ws) throw new NotFound(`workspace ${id}`);
        return tx.event({ teamId: ws.teamId, workspaceId: id, type, message, data: { ...data, workspace: ws.name } });
      });
    },
    async touch(id, at) {
      await ctx.db
        .updateTable('workspaces')
        .set({ last_activity_at: at })
        .where('id', '=', id)
        .where((eb) => eb.or([eb('last_activity_at', 'is', null), eb('last_activity_at', '<', at)]))
        .execute();
    },
    async forget(id) {
      await ctx.db.deleteFrom('workspaces').where('id', '=', id).where('desired', '=', 'deleted').execute();
    },
    onIntent(listener) {
      const handler = (e: StoredEvent) => {
        if ((e.type === 'desired' || e.type === 'created') && e.workspaceId) listener(e.workspaceId);
      };
      ctx.bus.on('event', handler);
      return () => ctx.bus.off('event', handler);
    },
  };
}


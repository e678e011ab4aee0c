import { sql } from 'kysely';
import { Conflict, type DesiredState, type Phase, type Profile, type Role } from '../domain/index.js';
import {
  accessChanged,
  compiledByShape,
  decodeCursor,
  holdsCompute,
  isUniqueViolation,
  newId,
  page,
  transaction,
  type Page,
  type StoreContext,
  type Tx,
} from './common.js';
import { admitIn, type Machine } from './admission.js';
import type { WorkspacesTable } from './schema.js';
import { resolveMounts } from './volumes.js';
import {
  fetchSummaries,
  selectSummaries,
  selectWorkspaces,
  toWorkspace,
  workspaceById,
  type Workspace,
  type WorkspaceSettings,
  type WorkspaceSummary,
} from './workspace-rows.js';

// The intent repository: what people ask of workspaces (create, start, stop,
// remove, share) and the lists they read. Observed state is written by the
// reconciler through workspace-states.ts; admission is in admission.ts.

export interface NewWorkspace {
  teamId: string;
  /** the user creating it, who owns it */
  owner: { id: string; username: string };
  name: string;
  profile: Profile;
  shared: boolean;
  start: boolean;
  /** where it may be placed; none: no placement check */
  machines?: Machine[];
  /** volumes to mount besides the profile's */
  volumes?: Array<{ volume: string; path?: string | undefined }>;
}

/**
 * Creates the workspace intent repository: records what people ask of their
 * workspaces (with admission inside the same transaction) and reads them for
 * the API, by id, by name and in pages.
 */
export function createWorkspacesRepo(ctx: StoreContext) {
  const { db, dialect } = ctx;

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
    get: (id: string) => workspaceById(db, id),

    async byName(teamId: string, name: string): Promise<Workspace | undefined> {
      const r = await selectWorkspaces(db)
        .where('workspaces.team_id', '=', teamId)
        .where('workspaces.name', '=', name)
        .where('workspaces.deleted_at', 'is', null)
        .executeTakeFirst();
      return r && toWorkspace(r);
    },

    /** Every workspace of a team that is not deleted, as full records, by name: what a cluster holds of the team. */
    async ofTeam(teamId: string): Promise<Workspace[]> {
      const rows = await selectWorkspaces(db).where('workspaces.team_id', '=', teamId).where('workspaces.deleted_at', 'is', null).orderBy('workspaces.name').execute();
      return rows.map(toWorkspace);
    },

    async listTeam(teamId: string, opts: { limit: number; cursor?: string; ownerId?: string }): Promise<Page<WorkspaceSummary>> {
      const after = decodeCursor<string>(opts.cursor, 'string');
      const q = teamList({ owner: Boolean(opts.ownerId), after: after !== undefined, limit: opts.limit + 1 }, { teamId, ownerId: opts.ownerId, after });
      return page(await fetchSummaries(ctx, q), opts.limit, (w) => w.name);
    },

    /** Workspaces in every team the user belongs to (or every team, for `userId` undefined), by team then name. */
    async listVisible(opts: { userId?: string; ownerId?: string; holdsGpu?: boolean; limit: number; cursor?: string }): Promise<Page<WorkspaceSummary>> {
      const after = decodeCursor<string>(opts.cursor, 'string');
      const [afterTeam, afterName = ''] = after === undefined ? [] : after.split('/');
      const q = visibleList(
        { member: opts.userId !== undefined, owner: Boolean(opts.ownerId), gpu: Boolean(opts.holdsGpu), after: after !== undefined, limit: opts.limit + 1 },
        { userId: opts.userId, ownerId: opts.ownerId, afterTeam, afterName },
      );
      return page(await fetchSummaries(ctx, q), opts.limit, (w) => `${w.team}/${w.name}`);
    },

    /**
     * Admits and records a new workspace in one transaction: quota, grants and
     * isolation are checked against the team's current usage while the team is
     * locked, so concurrent creates can never overshoot.
     */
    async create(input: NewWorkspace): Promise<Workspace> {
      try {
        return await transaction(ctx, async (tx) => {
          const { team, pool, cluster } = await admitIn(tx, dialect, input.teamId, input.profile, { compute: input.start, storage: true }, { machines: input.machines ?? [] });
          const now = ctx.now();
          const p = input.profile;
          const mounts = await resolveMounts(tx.db, team, [...p.volumes, ...(input.volumes ?? [])]);
          const spec: WorkspaceSettings = {
            environment: p.environment,
            ...(p.image === undefined ? {} : { image: p.image }),
            tier: p.tier,
            egress: p.egress,
            idleTimeoutSeconds: p.idleTimeoutSeconds,
            agentForwarding: p.agentForwarding,
            ...(mounts.length > 0 ? { volumes: mounts } : {}),
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
              cluster,
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
          return (await workspaceById(tx.db, id))!;
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw new Conflict(`workspace ${input.name} already exists in this team`, 'name_taken');
        throw err;
      }
    },

    /** Asks a workspace to run, admitting its compute again (storage is already held). Idempotent. */
    async start(ws: Workspace, profile: Profile, machines: Machine[] = []): Promise<Workspace> {
      return transaction(ctx, async (tx) => {
        const current = (await workspaceById(tx.db, ws.id)) ?? ws;
        if (current.desired === 'running' && current.phase !== 'failed') return current;
        const { pool, cluster } = await admitIn(tx, dialect, ws.teamId, profile, { compute: true, storage: false }, { machines, cluster: current.cluster || undefined });
        const phase: Phase = current.phase === 'stopped' || current.phase === 'failed' ? 'pending' : current.phase;
        await changeDesired(tx, current, 'running', `start requested`, { phase, reason: '', ...pool, cluster });
        return (await workspaceById(tx.db, ws.id))!;
      });
    },

    /** Asks a workspace to stop; the home is kept. Idempotent. */
    async stop(ws: Workspace, why = 'stop requested'): Promise<Workspace> {
      return transaction(ctx, async (tx) => {
        const current = (await workspaceById(tx.db, ws.id)) ?? ws;
        if (current.desired !== 'stopped') await changeDesired(tx, current, 'stopped', why);
        return (await workspaceById(tx.db, ws.id))!;
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

    /**
     * The workspaces of every team the person belongs to, with what the
     * connect check needs (team, owner, sharing, their role there), by team
     * and name: the caller applies `can()`.
     */
    async ofMember(userId: string): Promise<Array<{ id: string; team: string; name: string; phase: Phase; teamId: string; ownerId: string; shared: boolean; role: Role }>> {
      const rows = await db
        .selectFrom('workspaces')
        .innerJoin('memberships', (j) => j.onRef('memberships.team_id', '=', 'workspaces.team_id').on('memberships.user_id', '=', userId))
        .select(['workspaces.id', 'workspaces.team_name', 'workspaces.name', 'workspaces.phase', 'workspaces.team_id', 'workspaces.owner_id', 'workspaces.shared', 'memberships.role'])
        .where('workspaces.desired', '<>', 'deleted')
        .orderBy('workspaces.team_name')
        .orderBy('workspaces.name')
        .execute();
      return rows.map((r) => ({ id: r.id, team: r.team_name, name: r.name, phase: r.phase as Phase, teamId: r.team_id, ownerId: r.owner_id, shared: r.shared === 1, role: r.role as Role }));
    },

    async setShared(ws: Workspace, shared: boolean): Promise<Workspace> {
      await db.updateTable('workspaces').set({ shared: shared ? 1 : 0, updated_at: ctx.now() }).where('id', '=', ws.id).execute();
      // who may connect changed with it
      accessChanged(ctx);
      return (await workspaceById(db, ws.id))!;
    },
  };
}

export type WorkspacesRepo = ReturnType<typeof createWorkspacesRepo>;

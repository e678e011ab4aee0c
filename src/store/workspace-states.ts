import { canTransition, Conflict, NotFound, type Phase } from '../domain/index.js';
import { transaction, type StoreContext, type StoredEvent } from './common.js';
import { selectWorkspaces, toWorkspace, workspaceById, type Workspace } from './workspace-rows.js';

/** What deciding who may enter a workspace over SSH reads of it. */
export type AccessTarget = Pick<Workspace, 'id' | 'teamId' | 'ownerId' | 'shared'> & { spec: { agentForwarding?: boolean } };

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
  /** The same, with only what deciding who may enter reads (the SSH access sync's pass over every running workspace). */
  runningAccess(opts: { afterId?: string; limit: number }): Promise<AccessTarget[]>;
  get(id: string): Promise<Workspace | undefined>;
  /** Desired state and phase of the given workspaces, those that exist: what adoption decides by, without reading whole workspaces. */
  phases(ids: string[]): Promise<Map<string, { desired: Workspace['desired']; phase: Workspace['phase'] }>>;
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

/** Creates the {@link WorkspaceStates} interface over the store's database and event bus. */
export function createWorkspaceStates(ctx: StoreContext): WorkspaceStates {
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
    get: (id) => workspaceById(ctx.db, id),
    async phases(ids) {
      const out = new Map<string, { desired: Workspace['desired']; phase: Workspace['phase'] }>();
      for (let i = 0; i < ids.length; i += 500) {
        const rows = await ctx.db.selectFrom('workspaces').select(['id', 'desired', 'phase']).where('id', 'in', ids.slice(i, i + 500)).execute();
        for (const r of rows) out.set(r.id, { desired: r.desired as Workspace['desired'], phase: r.phase as Workspace['phase'] });
      }
      return out;
    },
    async runningAccess(opts) {
      let q = ctx.db.selectFrom('workspaces').select(['id', 'team_id', 'owner_id', 'shared', 'spec']).where('phase', '=', 'running').orderBy('id').limit(opts.limit);
      if (opts.afterId !== undefined) q = q.where('id', '>', opts.afterId);
      return (await q.execute()).map((r) => ({ id: r.id, teamId: r.team_id, ownerId: r.owner_id, shared: r.shared === 1, spec: { agentForwarding: (JSON.parse(r.spec) as { agentForwarding?: boolean }).agentForwarding === true } }));
    },
    async running(opts) {
      let q = selectWorkspaces(ctx.db).where('workspaces.phase', '=', 'running').orderBy('workspaces.id').limit(opts.limit);
      if (opts.afterId !== undefined) q = q.where('workspaces.id', '>', opts.afterId);
      return (await q.execute()).map(toWorkspace);
    },
    async report(id, report) {
      return transaction(ctx, async (tx) => {
        const ws = await workspaceById(tx.db, id);
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
        return (await workspaceById(tx.db, id))!;
      });
    },
    async note(id, type, message, data = {}) {
      return transaction(ctx, async (tx) => {
        const ws = await workspaceById(tx.db, id);
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

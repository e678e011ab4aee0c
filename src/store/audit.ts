import { decodeCursor, insertAudit, page, type AuditRow, type Page, type StoreContext, type StoredEvent } from './common.js';

export interface AuditEntry {
  id: number;
  at: number;
  actorId: string | null;
  actor: string;
  action: string;
  target: string;
  result: string;
  status: number;
  ip: string;
  details: Record<string, unknown>;
}

export interface AuditFilter {
  actor?: string;
  action?: string;
  target?: string;
  result?: string;
  since?: number;
  until?: number;
}

export function createAuditRepo(ctx: StoreContext) {
  const { db } = ctx;
  return {
    async record(e: AuditRow): Promise<void> {
      await insertAudit(db, e, ctx.now());
    },
    /** Turns a row written with its change into what the request finally answered (it failed after the change). */
    async amend(id: number, e: { result: string; status: number; details: Record<string, unknown> }): Promise<void> {
      await db.updateTable('audit').set({ result: e.result, status: e.status, details: JSON.stringify(e.details) }).where('id', '=', id).execute();
    },
    /** Newest first. `action` matches a prefix, so `workspace.` finds every workspace action. */
    async list(filter: AuditFilter, opts: { limit: number; cursor?: string }): Promise<Page<AuditEntry>> {
      const before = decodeCursor<number>(opts.cursor, 'number');
      let q = db.selectFrom('audit').selectAll().orderBy('id', 'desc').limit(opts.limit + 1);
      if (before !== undefined) q = q.where('id', '<', before);
      if (filter.actor) q = q.where('actor', '=', filter.actor);
      if (filter.action) q = q.where('action', 'like', `${filter.action.replace(/[%_\\]/g, '')}%`);
      if (filter.target) q = q.where('target', '=', filter.target);
      if (filter.result) q = q.where('result', '=', filter.result);
      if (filter.since !== undefined) q = q.where('at', '>=', filter.since);
      if (filter.until !== undefined) q = q.where('at', '<', filter.until);
      const rows = await q.execute();
      return page(
        rows.map((r) => ({
          id: Number(r.id),
          at: Number(r.at),
          actorId: r.actor_id,
          actor: r.actor,
          action: r.action,
          target: r.target,
          result: r.result,
          status: Number(r.status),
          ip: r.ip,
          details: JSON.parse(r.details) as Record<string, unknown>,
        })),
        opts.limit,
        (e) => e.id,
      );
    },
  };
}

export function createEventsRepo(ctx: StoreContext) {
  return {
    /** Events after `afterId`, oldest first, for one team or one workspace. */
    async after(scope: { teamId: string; workspaceId?: string }, afterId: number, limit: number): Promise<StoredEvent[]> {
      let q = ctx.db.selectFrom('events').selectAll().where('id', '>', afterId).orderBy('id').limit(limit);
      q = scope.workspaceId ? q.where('workspace_id', '=', scope.workspaceId) : q.where('team_id', '=', scope.teamId);
      const rows = await q.execute();
      return rows.map((r) => ({
        id: Number(r.id),
        teamId: r.team_id,
        workspaceId: r.workspace_id,
        type: r.type,
        message: r.message,
        data: JSON.parse(r.data) as Record<string, unknown>,
        createdAt: Number(r.created_at),
      }));
    },
    /** Subscribes to events as they commit; returns an unsubscribe function. */
    subscribe(listener: (e: StoredEvent) => void): () => void {
      ctx.bus.on('event', listener);
      return () => ctx.bus.off('event', listener);
    },
  };
}

export type AuditRepo = ReturnType<typeof createAuditRepo>;
export type EventsRepo = ReturnType<typeof createEventsRepo>;

import type { ApiDeps } from '../access.js';
import { route, type RouteDef } from '../router.js';
import { AuditQuery, AuditView, pageOf } from '../schemas.js';
import { auditView } from '../views.js';

export function auditRoutes(deps: ApiDeps): RouteDef[] {
  const { store } = deps;
  return [
    route({
      method: 'GET',
      url: '/api/v1/audit',
      action: 'audit.list',
      admin: true,
      summary: 'The audit log, newest first (admins); filter by actor, action prefix, target, result and time',
      tag: 'audit',
      query: AuditQuery,
      response: pageOf(AuditView),
      async handler({ query }) {
        const page = await store.audit.list(
          {
            ...(query.actor ? { actor: query.actor } : {}),
            ...(query.action ? { action: query.action } : {}),
            ...(query.target ? { target: query.target } : {}),
            ...(query.result ? { result: query.result } : {}),
            ...(query.since ? { since: Date.parse(query.since) } : {}),
            ...(query.until ? { until: Date.parse(query.until) } : {}),
          },
          { limit: query.limit, ...(query.cursor ? { cursor: query.cursor } : {}) },
        );
        return { items: page.items.map(auditView), nextCursor: page.nextCursor };
      },
    }),
  ];
}

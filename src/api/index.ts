import type { FastifyInstance } from 'fastify';
import type { Profile, Quota } from '../domain/index.js';
import type { Cookies, Identity, Oidc } from '../identity/index.js';
import type { Machine, Store } from '../store/index.js';
import { createAccess, type ApiDeps, type SshInfo, type WorkloadInfo, type WorkspaceLogs } from './access.js';
import { inProcessLists, type Lists } from './lists.js';
import { openApiDocument } from './openapi.js';
import { registerRoutes, route, type RouteDef } from './router.js';
import { auditRoutes } from './routes/audit.js';
import { authRoutes } from './routes/auth.js';
import { catalogueRoutes } from './routes/catalogue.js';
import { ssoRoutes } from './routes/sso.js';
import { imageRoutes } from './routes/images.js';
import { volumeRoutes } from './routes/volumes.js';
import { meRoutes } from './routes/me.js';
import { teamRoutes } from './routes/teams.js';
import { userRoutes } from './routes/users.js';
import { workspaceRoutes } from './routes/workspaces.js';
import { clusterObjectRoutes } from './routes/cluster-objects.js';
import { workloadIdentityRoutes } from './routes/workload-identity.js';
import { Type } from '@sinclair/typebox';
import { createClusterInputs, type WorkspaceKeys } from '../reconciler/index.js';
import type { ImageStore, KubernetesConfig } from '../runtime/index.js';

export { isApiError, errorMessage, schemas } from './contract.js';
export type { RouteDef } from './router.js';
export type { SshInfo, WorkloadInfo } from './access.js';
export { inProcessLists, workerLists, type Lists } from './lists.js';
export { restartProfile } from './restart.js';

export interface ApiOptions {
  store: Store;
  identity: Identity;
  cookies: Cookies;
  profiles: Profile[];
  defaultQuota: Quota;
  https: boolean;
  sessionTtlSeconds: number;
  version: string;
  log: { error(obj: unknown, msg?: string): void };
  /** where workspace logs are read: the one thing the API takes from the runtime */
  logs?: WorkspaceLogs | undefined;
  images?: ImageStore | undefined;
  oidc?: Oidc | undefined;
  publicUrl?: string | undefined;
  /** where workspaces are placed (kept current by the caller); no placement check when empty */
  machines?: Machine[];
  /** the clusters workspaces run on; this machine alone when absent */
  clusters?: Array<{ name: string; kind: 'local' | 'kubernetes' }>;
  /** where pages of workspaces are read; on the server's own thread when absent */
  lists?: Lists;
  ssh?: SshInfo | undefined;
  /** resolves once the effects of access changes have reached running workspaces (their authorized_keys) */
  accessSettled?: () => Promise<void>;
  /** what rendering the configured clusters' objects takes: the `kubernetes` config, the pods' stop grace, the per-workspace SSH keys */
  kubernetes?: { config: KubernetesConfig; stopGraceSeconds: number; workspaceKeys: WorkspaceKeys };
  /** workload identity, unless disabled */
  workload?: WorkloadInfo | undefined;
}

/** Registers the whole REST API (and /healthz) on a Fastify instance; returns the route definitions. */
export function registerApi(app: FastifyInstance, opts: ApiOptions): RouteDef[] {
  const deps: ApiDeps = {
    store: opts.store,
    identity: opts.identity,
    cookies: opts.cookies,
    profiles: opts.profiles,
    defaultQuota: opts.defaultQuota,
    https: opts.https,
    sessionTtlSeconds: opts.sessionTtlSeconds,
    access: createAccess(opts.store),
    logs: opts.logs,
    images: opts.images,
    oidc: opts.oidc,
    publicUrl: opts.publicUrl,
    machines: opts.machines ?? [],
    clusters: opts.clusters ?? [{ name: 'local', kind: 'local' }],
    lists: opts.lists ?? inProcessLists(opts.store),
    ssh: opts.ssh,
    kubernetes: opts.kubernetes && {
      config: opts.kubernetes.config,
      stopGraceSeconds: opts.kubernetes.stopGraceSeconds,
      inputs: createClusterInputs(opts.store, opts.kubernetes.workspaceKeys),
    },
    workload: opts.workload,
  };
  const routes: RouteDef[] = [
    ...authRoutes(deps),
    ...ssoRoutes(deps),
    ...meRoutes(deps),
    ...userRoutes(deps),
    ...teamRoutes(deps),
    ...workspaceRoutes(deps),
    ...catalogueRoutes(deps),
    ...clusterObjectRoutes(deps),
    ...volumeRoutes(deps),
    ...imageRoutes(deps),
    ...workloadIdentityRoutes(deps),
    ...auditRoutes(deps),
  ];
  let document: unknown;
  routes.push(
    route({
      method: 'GET',
      url: '/api/v1/openapi.json',
      action: 'openapi.read',
      summary: 'This API, described as OpenAPI 3.1',
      tag: 'meta',
      public: true,
      response: Type.Unknown(),
      async handler({ reply }) {
        document ??= openApiDocument(routes, opts.version);
        reply.header('cache-control', 'public, max-age=300');
        return document;
      },
    }),
  );
  registerRoutes(app, routes, { store: opts.store, identity: opts.identity, cookies: opts.cookies, https: opts.https, log: opts.log, ...(opts.accessSettled ? { accessSettled: opts.accessSettled } : {}) });
  return routes;
}

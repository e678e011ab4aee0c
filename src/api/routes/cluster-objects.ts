import { Type } from '@sinclair/typebox';
import { Conflict, DomainError, InvalidInput, NotFound } from '../../domain/index.js';
import { kubernetesRender, renderSettings, type TeamWithWorkspaces } from '../../runtime/index.js';
import type { Team } from '../../store/index.js';
import type { ApiDeps } from '../access.js';
import { route, TextBody, type RouteDef } from '../router.js';
import { ClusterObjectList, ClusterObjectsQuery, ClusterParams } from '../schemas.js';

const YAML_TYPES = new Set(['application/yaml', 'application/x-yaml', 'text/yaml']);

/** Whether an Accept header ranks a YAML type above JSON (a tie, or no header, is JSON). */
export function prefersYaml(accept: string | undefined): boolean {
  let yaml = 0;
  let json = 0;
  for (const part of (accept ?? '').split(',')) {
    const [type = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const q = Number(params.find((p) => p.startsWith('q='))?.slice(2) ?? 1);
    if (!Number.isFinite(q)) continue;
    if (YAML_TYPES.has(type)) yaml = Math.max(yaml, q);
    else if (type === 'application/json' || type === '*/*' || type === 'application/*') json = Math.max(json, q);
  }
  return yaml > json;
}

/** What configured clusters there are, for the message of a request naming none of them. */
function configured(names: string[]): string {
  return names.length > 0 ? `Kubernetes clusters: ${names.join(', ')}` : 'no Kubernetes cluster is configured (kubernetes.clusters)';
}

/** The GPU types a cluster's node pools offer must cover every GPU workspace rendered for it. */
function checkGpuPools(cluster: string, pools: Array<{ type: string }>, teams: TeamWithWorkspaces[]): void {
  for (const { workspaces } of teams) {
    for (const { spec } of workspaces) {
      if (spec.gpu.count > 0 && !pools.some((p) => p.type === spec.gpu.type)) {
        throw new Conflict(`workspace ${spec.team}/${spec.name} uses ${spec.gpu.type ?? 'untyped'} GPUs, and cluster ${cluster} has no GPU node pool of that type (kubernetes.clusters[].gpuPools)`);
      }
    }
  }
}

/**
 * `GET /api/v1/clusters/{cluster}/objects`: the objects Atrium applies to a
 * Kubernetes cluster, rendered from the store and the config alone (the
 * cluster is never contacted), for GitOps and review.
 */
export function clusterObjectRoutes(deps: ApiDeps): RouteDef[] {
  const { store } = deps;
  return [
    route({
      method: 'GET',
      url: '/api/v1/clusters/:cluster/objects',
      action: 'cluster.render',
      admin: true,
      summary:
        "The objects Atrium applies to a Kubernetes cluster (admins), rendered without contacting it: the cluster-scoped ones, then each team's namespace, " +
        'quota, policies and roles, then its workspaces (deleted ones left out; stopped ones with 0 replicas). As a Kubernetes List, or as one YAML stream ' +
        '(Accept: application/yaml, or ?format=yaml) for `kubectl apply -f -` and GitOps. Workspace Secrets hold private keys (the sshd host key, the app token): ' +
        'they come without their data unless ?secrets=true, annotated atrium.dev/data, and Atrium writes the data when it starts the workspace',
      tag: 'clusters',
      params: ClusterParams,
      query: ClusterObjectsQuery,
      response: ClusterObjectList,
      alternates: { 'application/yaml': Type.String({ description: 'the same objects as one multi-document YAML stream' }) },
      async handler({ params, query, request, user, ip }) {
        const k = deps.kubernetes;
        const names = k?.config.clusters.map((c) => c.name) ?? [];
        if (params.cluster === 'local') {
          throw new InvalidInput(`cluster local is this machine, whose workspaces are runc sandboxes: it has no Kubernetes objects; ${configured(names)}`, { available: names });
        }
        const cluster = k?.config.clusters.find((c) => c.name === params.cluster);
        if (!k || !cluster) throw new DomainError('not_found', `cluster ${params.cluster} not found; ${configured(names)}`, { available: names });

        let teams: Team[] | undefined;
        if (query.team !== undefined) {
          const team = await store.teams.byName(query.team);
          if (!team) throw new NotFound(`team ${query.team}`);
          teams = [team];
        }
        const settings = renderSettings(k.config, cluster, { stopGraceSeconds: k.stopGraceSeconds });
        // the workspaces placed on this cluster (and, with one cluster, those not placed anywhere yet)
        const desired = await k.inputs.desired(teams, (ws) => ws.cluster === cluster.name || (ws.cluster === '' && names.length === 1));
        checkGpuPools(cluster.name, settings.gpuPools, desired);
        const clusterScope = teams === undefined;
        if (query.secrets) {
          // a read, yet one that hands out every workspace's private keys: worth the row a change gets
          const auth = user();
          await store.audit.record({
            actorId: auth.user.id,
            actor: auth.user.username,
            action: 'cluster.render',
            target: `clusters/${cluster.name}/objects`,
            result: 'ok',
            status: 200,
            ip,
            details: { secrets: true, ...(query.team === undefined ? {} : { team: query.team }) },
          });
        }
        if (query.format === 'yaml' || (query.format === undefined && prefersYaml(request.headers.accept))) {
          const header = [
            `# Atrium's objects for Kubernetes cluster ${cluster.name}${query.team === undefined ? '' : `, team ${query.team}`}`,
            query.secrets
              ? '# Secrets WITH their data: private keys of every workspace here; keep this out of version control'
              : '# Secrets without their data (annotated atrium.dev/data): Atrium writes it when it starts each workspace',
          ];
          return new TextBody('application/yaml; charset=utf-8', `${header.join('\n')}\n${kubernetesRender.renderYaml(settings, desired, { clusterScope, secretData: query.secrets })}`);
        }
        const objects = kubernetesRender.renderAll(settings, desired, { clusterScope });
        return { apiVersion: 'v1' as const, kind: 'List' as const, items: query.secrets ? objects : kubernetesRender.withoutSecretData(objects) };
      },
    }),
  ];
}

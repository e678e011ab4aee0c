import { renderClusterScope } from './cluster.js';
import { renderTeam } from './tenant.js';
import { ANNOTATION_DATA, type KubeObject, type RenderSettings, type TeamInput, type WorkspaceInput } from './types.js';
import { renderVolumeClaim } from './volumes.js';
import { renderWorkspace } from './workspace.js';
import { yamlDocument } from './yaml.js';

export * from './types.js';
export { renderAdmissionPolicies, renderClusterScope, renderRuntimeClass } from './cluster.js';
export {
  namespaceOf, PRIVATE_V4, PRIVATE_V6, renderAuthorizationPolicy, renderLimitRange, renderMemberRole, renderNamespace,
  renderNetworkPolicies, renderResourceQuota, renderServiceAccount, renderTeam,
} from './tenant.js';
export { datasetVolumeName, LABEL_VOLUME, renderDatasetClaim, renderVolumeClaim, volumeClaimName, workspaceVolumeMounts } from './volumes.js';
export { jupyterToken, renderAccessSecret, renderHome, renderService, renderStatefulSet, renderWorkspace, workspaceAnnotations, workspaceLabels, workspaceNames } from './workspace.js';

/** A team with its workspaces, as `atrium render kubernetes` prints it. */
export interface TeamWithWorkspaces {
  team: TeamInput;
  workspaces: WorkspaceInput[];
  /** the team's volumes: a claim each (datasets' claims elsewhere depend on what the cluster bound, and are made by Atrium as it runs) */
  volumes?: Array<{ name: string; sizeBytes: number }>;
}

/**
 * Everything Atrium would apply to one cluster: the cluster-scoped objects,
 * then per team its tenant objects and its workspaces.
 */
export function renderAll(settings: RenderSettings, teams: TeamWithWorkspaces[], opts: { clusterScope?: boolean } = {}): KubeObject[] {
  const out: KubeObject[] = opts.clusterScope === false ? [] : renderClusterScope(settings);
  for (const t of teams) {
    out.push(...renderTeam(settings, t.team));
    for (const v of t.volumes ?? []) out.push(renderVolumeClaim(settings, { team: t.team.name, ...v }));
    for (const w of t.workspaces) out.push(...renderWorkspace(settings, w));
  }
  return out;
}

/** Objects as one multi-document YAML stream, the form `kubectl apply -f -` and GitOps tools take. */
export function toYaml(objects: KubeObject[]): string {
  return objects.map((o) => `---\n${yamlDocument(o)}`).join('');
}

/**
 * The objects with every Secret reduced to its metadata and type, annotated
 * with what Atrium writes into it. A workspace's Secret holds its sshd's host
 * key and its app's token: private keys that belong in no Git repository.
 * Atrium writes the data itself whenever it starts the workspace.
 *
 * @example toYaml(withoutSecretData(renderAll(settings, teams)))
 */
export function withoutSecretData(objects: KubeObject[]): KubeObject[] {
  return objects.map((o) => {
    if (o.apiVersion !== 'v1' || o.kind !== 'Secret') return o;
    const keys = Object.keys({ ...(o.data as object | undefined), ...(o.stringData as object | undefined) }).sort();
    const said = `written by Atrium, not rendered${keys.length > 0 ? `: ${keys.join(', ')}` : ''}`;
    return {
      apiVersion: o.apiVersion,
      kind: o.kind,
      // Object.assign rather than a spread followed by a computed key, which V8 builds several times slower
      metadata: { ...o.metadata, annotations: Object.assign({}, o.metadata.annotations, { [ANNOTATION_DATA]: said }) },
      ...(o.type === undefined ? {} : { type: o.type }),
    };
  });
}

/**
 * What `toYaml(renderAll(settings, teams, opts))` writes, a team at a time:
 * each team's objects are written out and let go before the next team's
 * are made, so a platform of thousands of workspaces never holds all its
 * objects at once (which cost about a third more time, in garbage
 * collection, in bench/render). Secrets are written without their data
 * unless `secretData` (see {@link withoutSecretData}).
 */
export function renderYaml(settings: RenderSettings, teams: TeamWithWorkspaces[], opts: { clusterScope?: boolean; secretData?: boolean } = {}): string {
  const write = (objects: KubeObject[]) => toYaml(opts.secretData ? objects : withoutSecretData(objects));
  const parts = opts.clusterScope === false ? [] : [write(renderClusterScope(settings))];
  for (const t of teams) parts.push(write(renderAll(settings, [t], { clusterScope: false })));
  return parts.join('');
}

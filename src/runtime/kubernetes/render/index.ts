import { stringify } from 'yaml';
import { renderClusterScope } from './cluster.js';
import { renderTeam } from './tenant.js';
import type { KubeObject, RenderSettings, TeamInput, WorkspaceInput } from './types.js';
import { renderWorkspace } from './workspace.js';

export * from './types.js';
export { renderAdmissionPolicies, renderClusterScope, renderRuntimeClass } from './cluster.js';
export {
  namespaceOf, PRIVATE_V4, PRIVATE_V6, renderAuthorizationPolicy, renderLimitRange, renderMemberRole, renderNamespace,
  renderNetworkPolicies, renderResourceQuota, renderServiceAccount, renderTeam,
} from './tenant.js';
export { jupyterToken, renderAccessSecret, renderHome, renderService, renderStatefulSet, renderWorkspace, workspaceAnnotations, workspaceLabels, workspaceNames } from './workspace.js';

/** A team with its workspaces, as `atrium render kubernetes` prints it. */
export interface TeamWithWorkspaces {
  team: TeamInput;
  workspaces: WorkspaceInput[];
}

/**
 * Everything Atrium would apply to one cluster: the cluster-scoped objects,
 * then per team its tenant objects and its workspaces.
 */
export function renderAll(settings: RenderSettings, teams: TeamWithWorkspaces[], opts: { clusterScope?: boolean } = {}): KubeObject[] {
  const out: KubeObject[] = opts.clusterScope === false ? [] : renderClusterScope(settings);
  for (const t of teams) {
    out.push(...renderTeam(settings, t.team));
    for (const w of t.workspaces) out.push(...renderWorkspace(settings, w));
  }
  return out;
}

/** Objects as one multi-document YAML stream, the form `kubectl apply -f -` and GitOps tools take. */
export function toYaml(objects: KubeObject[]): string {
  return objects.map((o) => `---\n${stringify(o, { lineWidth: 0, sortMapEntries: false })}`).join('');
}

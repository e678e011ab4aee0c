import type { V1LimitRange, V1Namespace, V1NetworkPolicy, V1ResourceQuota, V1Role, V1RoleBinding, V1ServiceAccount } from '@kubernetes/client-node';
import { formatBytes, formatCpu } from '../../../domain/index.js';
import {
  GPU_RESOURCE, LABEL_COMPONENT, LABEL_EGRESS, LABEL_MANAGED_BY, LABEL_SENSITIVE, LABEL_TEAM, MANAGED_BY, WORKSPACE_PORTS,
  asKube, type KubeObject, type RenderSettings, type TeamInput,
} from './types.js';

/** The namespace a team's workspaces live in on every cluster. */
export function namespaceOf(settings: Pick<RenderSettings, 'namespacePrefix'>, team: string): string {
  return `${settings.namespacePrefix}${team}`;
}

function teamLabels(team: string): Record<string, string> {
  // every key written out: V8 builds `{ ...MANAGED_BY, [LABEL_TEAM]: team }` some 40 times slower (see workspaceLabels)
  return { [LABEL_MANAGED_BY]: 'atrium', [LABEL_TEAM]: team, [LABEL_COMPONENT]: 'tenant' };
}

function meta(settings: RenderSettings, team: string, name: string) {
  return { name, namespace: namespaceOf(settings, team), labels: teamLabels(team) };
}

/** The team's namespace: Pod Security `restricted` enforced (and warned, audited), marked sensitive where it is. */
export function renderNamespace(settings: RenderSettings, team: TeamInput): KubeObject {
  const ns: V1Namespace = {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: namespaceOf(settings, team.name),
      labels: {
        ...teamLabels(team.name),
        [LABEL_SENSITIVE]: String(team.sensitive),
        'pod-security.kubernetes.io/enforce': 'restricted',
        'pod-security.kubernetes.io/enforce-version': 'latest',
        'pod-security.kubernetes.io/warn': 'restricted',
        'pod-security.kubernetes.io/audit': 'restricted',
      },
    },
  };
  return asKube(ns);
}

/**
 * The team quota, enforced by the API server itself: limits of CPU and memory
 * (what Atrium charges), GPUs of every type together (per-type limits stay
 * Atrium's admission, since the device plugin knows only one resource name),
 * storage, and counts.
 */
export function renderResourceQuota(settings: RenderSettings, team: TeamInput): KubeObject {
  const q = team.quota;
  const gpus = Object.values(q.gpus).reduce((a, b) => a + b, 0);
  const rq: V1ResourceQuota = {
    apiVersion: 'v1',
    kind: 'ResourceQuota',
    metadata: meta(settings, team.name, 'atrium-quota'),
    spec: {
      hard: {
        'limits.cpu': formatCpu(q.cpuMilli),
        'limits.memory': formatBytes(q.memoryBytes),
        'requests.cpu': formatCpu(q.cpuMilli),
        'requests.memory': formatBytes(q.memoryBytes),
        [`requests.${GPU_RESOURCE}`]: String(gpus),
        'requests.storage': formatBytes(q.storageBytes),
        persistentvolumeclaims: String(q.workspaces),
        pods: String(q.workspaces),
        'count/statefulsets.apps': String(q.workspaces),
      },
    },
  };
  return asKube(rq);
}

/**
 * Defaults for anything created without resources (so the quota can count
 * it) and ceilings no single container or volume may pass: the team's quota.
 */
export function renderLimitRange(settings: RenderSettings, team: TeamInput): KubeObject {
  const q = team.quota;
  const lr: V1LimitRange = {
    apiVersion: 'v1',
    kind: 'LimitRange',
    metadata: meta(settings, team.name, 'atrium-limits'),
    spec: {
      limits: [
        {
          type: 'Container',
          _default: { cpu: '500m', memory: '512Mi' },
          defaultRequest: { cpu: '100m', memory: '128Mi' },
          ...(q.cpuMilli > 0 && q.memoryBytes > 0 ? { max: { cpu: formatCpu(q.cpuMilli), memory: formatBytes(q.memoryBytes) } } : {}),
        },
        ...(q.storageBytes > 0 ? [{ type: 'PersistentVolumeClaim', max: { storage: formatBytes(q.storageBytes) } }] : []),
      ],
    },
  };
  // the generated model names the field `_default`; the API's name is `default`
  const spec = lr.spec!.limits.map(({ _default, ...rest }) => (_default ? { default: _default, ...rest } : rest));
  return { ...lr, spec: { limits: spec } } as KubeObject;
}

/** The identity workspace pods run as: no API token mounted, only the projected workload-identity token. */
export function renderServiceAccount(settings: RenderSettings, team: TeamInput): KubeObject {
  const sa: V1ServiceAccount = {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: meta(settings, team.name, 'workspace'),
    automountServiceAccountToken: false,
  };
  return asKube(sa);
}

/** Ranges a workspace never reaches, even with public egress: private, carrier-grade NAT, link-local (cloud metadata) and loopback. */
export const PRIVATE_V4 = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16', '127.0.0.0/8', '0.0.0.0/8'];
export const PRIVATE_V6 = ['fc00::/7', 'fe80::/10', '::1/128'];

/**
 * Default deny both ways; in: only Atrium, to the workspace ports; out: DNS for
 * every workspace, and public addresses (never private, link-local or
 * metadata ones) for workspaces whose profile says `egress: public`.
 */
export function renderNetworkPolicies(settings: RenderSettings, team: TeamInput): KubeObject[] {
  const workspacePods = { matchLabels: { ...MANAGED_BY, [LABEL_COMPONENT]: 'workspace' } };
  const from = [
    ...(settings.atriumPods
      ? [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': settings.atriumPods.namespace } }, podSelector: { matchLabels: settings.atriumPods.labels } }]
      : []),
    ...settings.ingressCidrs.map((cidr) => ({ ipBlock: { cidr } })),
  ];
  const policies: V1NetworkPolicy[] = [
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: meta(settings, team.name, 'atrium-default-deny'),
      spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
    },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: meta(settings, team.name, 'atrium-ingress'),
      spec: {
        podSelector: workspacePods,
        policyTypes: ['Ingress'],
        // no sources at all (Atrium outside the cluster, reaching pods through the API server) admits nothing
        ingress: from.length > 0 ? [{ _from: from, ports: [{ protocol: 'TCP', port: WORKSPACE_PORTS.http }, { protocol: 'TCP', port: WORKSPACE_PORTS.ssh }] }] : [],
      },
    },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: meta(settings, team.name, 'atrium-dns'),
      spec: {
        podSelector: workspacePods,
        policyTypes: ['Egress'],
        egress: [
          {
            to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
            ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }],
          },
        ],
      },
    },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: meta(settings, team.name, 'atrium-public-egress'),
      spec: {
        podSelector: { matchLabels: { ...workspacePods.matchLabels, [LABEL_EGRESS]: 'public' } },
        policyTypes: ['Egress'],
        egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: PRIVATE_V4 } }, { ipBlock: { cidr: '::/0', except: PRIVATE_V6 } }] }],
      },
    },
  ];
  // the generated model names `from` `_from`; the API's name is `from`
  return policies.map((p) => JSON.parse(JSON.stringify(p).replaceAll('"_from":', '"from":')) as KubeObject);
}

/** With a mesh, the sidecars admit only Atrium's principal to the workspace ports as well. */
export function renderAuthorizationPolicy(settings: RenderSettings, team: TeamInput): KubeObject[] {
  if (!settings.mesh) return [];
  return [
    {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: meta(settings, team.name, 'atrium-workspaces'),
      spec: {
        selector: { matchLabels: { ...MANAGED_BY, [LABEL_COMPONENT]: 'workspace' } },
        action: 'ALLOW',
        rules: [
          {
            from: [{ source: { principals: [settings.mesh.principal] } }],
            to: [{ operation: { ports: [String(WORKSPACE_PORTS.http), String(WORKSPACE_PORTS.ssh)] } }],
          },
        ],
      },
    },
  ];
}

/**
 * The optional read-only role for members: what runs and why, never Secrets,
 * exec, port-forward or any write. People never get write access in team
 * namespaces: Atrium is the only writer.
 */
export function renderMemberRole(settings: RenderSettings, team: TeamInput): KubeObject[] {
  if (!settings.memberReadOnly || team.members.length === 0) return [];
  const role: V1Role = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: meta(settings, team.name, 'atrium-member-read'),
    rules: [
      { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
      { apiGroups: [''], resources: ['pods', 'services', 'persistentvolumeclaims', 'events', 'resourcequotas', 'limitranges', 'serviceaccounts'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['apps'], resources: ['statefulsets'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['get', 'list', 'watch'] },
    ],
  };
  const prefix = settings.memberReadOnly.userPrefix;
  const binding: V1RoleBinding = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: meta(settings, team.name, 'atrium-member-read'),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'atrium-member-read' },
    subjects: [...team.members]
      .sort((a, b) => a.username.localeCompare(b.username))
      .map((m) => ({ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: `${prefix}${m.username}` })),
  };
  return [asKube(role), asKube(binding)];
}

/** Everything of one team, in the order it is applied (the namespace first). */
export function renderTeam(settings: RenderSettings, team: TeamInput): KubeObject[] {
  return [
    renderNamespace(settings, team),
    renderResourceQuota(settings, team),
    renderLimitRange(settings, team),
    renderServiceAccount(settings, team),
    ...renderNetworkPolicies(settings, team),
    ...renderAuthorizationPolicy(settings, team),
    ...renderMemberRole(settings, team),
  ];
}

import type { Quota } from '../../../domain/index.js';
import type { WorkspaceSpec } from '../../types.js';

export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
/** Every object Atrium writes carries this label; pruning and the admission policy select by it. */
export const MANAGED_BY = { [LABEL_MANAGED_BY]: 'atrium' } as const;
export const LABEL_TEAM = 'atrium.dev/team';
export const LABEL_WORKSPACE = 'atrium.dev/workspace';
/** an annotation, not a label: workspace ids may begin or end with `-` or `_`, which label values may not */
export const ANNOTATION_WORKSPACE_ID = 'atrium.dev/workspace-id';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';
export const LABEL_SENSITIVE = 'atrium.dev/sensitive';
export const LABEL_EGRESS = 'atrium.dev/egress';
/** on cluster-scoped objects that belong to no team (RuntimeClass, admission policies) */
export const LABEL_SCOPE = 'atrium.dev/scope';
/** on a Secret rendered without its data: what Atrium writes into it */
export const ANNOTATION_DATA = 'atrium.dev/data';

/** Ports of a workspace pod: the app (through the agent, or Jupyter itself) and a fresh sshd per connection. */
export const WORKSPACE_PORTS = { http: 8888, ssh: 2222 } as const;
/** The GPU resource every NVIDIA device plugin advertises. */
export const GPU_RESOURCE = 'nvidia.com/gpu';

/** A Kubernetes object as Atrium renders it: plain JSON, ready for server-side apply. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export interface Toleration {
  key?: string;
  operator?: 'Exists' | 'Equal';
  value?: string;
  effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
}

/** Where a GPU type lives on a cluster: the node group's labels and taints. */
export interface GpuNodePool {
  type: string;
  nodeSelector: Record<string, string>;
  tolerations: Toleration[];
}

/** Cluster-wide settings the renderers need (from `kubernetes` and the cluster's entry in the config). */
export interface RenderSettings {
  /** namespaces are `<prefix><team>` */
  namespacePrefix: string;
  /** the identity Atrium writes with (`system:serviceaccount:<ns>:<name>`): the only writer the admission policy lets through */
  writer: string;
  /** where Atrium's own pods run, for the ingress rule (namespace name and pod labels); null when Atrium runs outside the cluster */
  atriumPods: { namespace: string; labels: Record<string, string> } | null;
  /** address ranges Atrium connects from when it runs outside the cluster with `endpoint: direct` */
  ingressCidrs: string[];
  /** the workspace image when a profile names none */
  defaultImage: string;
  /** the home volume's storage class when the profile names none; the cluster's default class when null */
  storageClass: string | null;
  /** team volumes' storage class (one that offers ReadWriteMany); `storageClass` when null */
  volumeStorageClass: string | null;
  /** the sandboxed tier: the RuntimeClass Atrium creates and requires in sensitive teams */
  sandboxed: { runtimeClass: string; handler: string; overhead: { cpu: string; memory: string } };
  /** audiences of the projected service-account token every workspace gets, for workload identity */
  tokenAudiences: string[];
  tokenExpirationSeconds: number;
  /** an Istio AuthorizationPolicy per team admitting only this principal, when a mesh is in use */
  mesh: { principal: string } | null;
  /** grant members a read-only Role (no Secrets) in their team's namespace, bound to `<memberPrefix><username>` */
  memberReadOnly: { userPrefix: string } | null;
  /** GPU node groups by type */
  gpuPools: GpuNodePool[];
  /** scheduling constraints every workspace pod gets (e.g. a dedicated node group) */
  nodeSelector: Record<string, string>;
  tolerations: Toleration[];
  /** SIGTERM, then SIGKILL after this */
  stopGraceSeconds: number;
}

/** One team as the tenant renderers see it. */
export interface TeamInput {
  name: string;
  /** sensitive teams may run only sandboxed workspaces */
  sensitive: boolean;
  quota: Quota;
  members: Array<{ username: string; role: string }>;
}

/** One workspace as the renderers see it: the runtime's spec plus whether it should run. */
export interface WorkspaceInput {
  spec: WorkspaceSpec;
  running: boolean;
  /** the home volume's storage class from the profile, over the cluster's */
  storageClass?: string;
}

/** A typed model from the client library as the plain object it is on the wire. */
export function asKube(o: { apiVersion?: string; kind?: string }): KubeObject {
  return o as unknown as KubeObject;
}

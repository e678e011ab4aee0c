/**
 * The runtime part's public entry: the runtime interface (design §6) the rest
 * of the system drives workspaces through, and the local runtime that
 * implements it with runc sandboxes on this machine.
 */
export type { Activity, Capacity, Connector, Endpoint, Gpu, ImageInfo, ImageProgress, ImageStore, LogOptions, Observation, ReadyProgress, Runtime, StartOptions, VolumeSpec, VolumeState, WorkspaceSpec } from './types.js';
export { WORKLOAD_TOKEN_DIR } from './types.js';
export { createLocalRuntime, type GpuInventoryEntry, type LocalRuntimeOptions } from './local/index.js';
export { egressNames } from './local/egress.js';
export type { ClusterSet, KubernetesRuntime, KubeClient } from './kubernetes/index.js';
/** The Kubernetes runtime, loaded on first use: its client library takes most of a second to load, which the local runtime never pays. */
export const loadKubernetes = () => import('./kubernetes/index.js');
/** The pure Kubernetes renderers (cheap to load: no client library). */
export * as kubernetesRender from './kubernetes/render/index.js';
export type { KubeObject, RenderSettings, TeamInput, TeamWithWorkspaces, WorkspaceInput } from './kubernetes/render/index.js';
/** A cluster's render settings from the config (cheap as well: the client library stays unloaded). */
export { DEFAULT_WRITER, renderSettings, type ClusterConfig, type KubernetesConfig } from './kubernetes/settings.js';

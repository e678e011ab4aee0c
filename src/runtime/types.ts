import type { Duplex } from 'node:stream';
import type { Egress, EnvironmentKind, Phase, Tier } from '../domain/index.js';

/**
 * The runtime interface (design §6). Types here are the only way runtimes and
 * the rest of the system talk: the reconciler drives a runtime with them, the
 * proxy and SSH gateway reach workspaces through `endpoint`.
 */

/** What a runtime needs to run one workspace; built by the reconciler from the workspace record. */
export interface WorkspaceSpec {
  id: string;
  team: string;
  name: string;
  /** the Kubernetes cluster placement chose for it; absent on this machine */
  cluster?: string;
  /** the owning user: each user gets their own host uid */
  owner: { id: string; username: string };
  environment: { kind: EnvironmentKind; command?: string[]; port?: number };
  /** an OCI image: a name from the runtime's image store or a reference it can pull; the host's own root when unset (local runtime) */
  image?: string;
  tier: Tier;
  egress: Egress;
  cpu: { requestMilli: number; limitMilli: number };
  memory: { requestBytes: number; limitBytes: number };
  gpu: { count: number; type: string | null };
  storageBytes: number;
  /** prefix the web app is served under: `/w/<team>/<ws>/` */
  basePath: string;
  /** the workspace's sshd: its host key and who may log in */
  ssh: {
    /** the sshd's host key (OpenSSH private key); the control plane holds it, so the gateway and `atrium config-ssh` can pin it */
    hostKey: string;
    /** `authorized_keys` lines: the gateway's key for this workspace and the keys of everyone with the connect right, with their options */
    authorizedKeys: string[];
  };
  /** whether an SSH session may forward the connecting person's agent into the workspace */
  agentForwarding: boolean;
  /** team volumes and datasets it mounts; read-only ones by the kernel */
  volumes: VolumeSpec[];
  /** the host group that owns the team's volumes (local runtime), when it mounts any */
  teamGid?: number;
  /** a workload identity token from Atrium, for a runtime that takes them (`Runtime.workloadToken`) */
  workloadToken?: string;
}

/** Where a workspace finds its workload identity token, on every runtime (path in `ATRIUM_TOKEN_FILE`). */
export const WORKLOAD_TOKEN_DIR = '/var/run/secrets/atrium';

/** A volume a workspace mounts. */
export interface VolumeSpec {
  id: string;
  /** the owning team and the volume's name */
  team: string;
  name: string;
  /** where it appears in the workspace: under /home/jovyan or /data */
  path: string;
  readOnly: boolean;
  sizeBytes: number;
}

/** A volume as a runtime keeps it (volume sync): its storage exists while the volume does. */
export interface VolumeState {
  id: string;
  team: string;
  name: string;
  sizeBytes: number;
  /** teams it is published to, read-only */
  sharedWith: string[];
}

/** A change the runtime saw, from a watch or by polling. */
export interface Observation {
  workspaceId: string;
  phase: Phase;
  reason?: string;
  /** last lines of the app's output, for failures */
  logTail?: string;
}

/** A byte stream opened to a workspace's app or sshd; the caller owns it. */
export type Connector = () => Promise<Duplex>;

/** How to reach one port of a running workspace. */
export interface Endpoint {
  /** opens a new byte stream (an SSH session, a WebSocket, a probe) */
  connect: Connector;
  /**
   * where a pooled HTTP client connects: a Unix socket (local runtime) or an
   * address (a pod); the proxy keeps connections to it alive between requests
   */
  address: { socketPath: string } | { host: string; port: number };
  /** headers the app needs on every request from Atrium: its own credentials (e.g. Jupyter's token), never a person's */
  headers: Readonly<Record<string, string>>;
}

/** Signals the idle culler reads (design §5). */
export interface Activity {
  /** CPU seconds used since the workspace started */
  cpuSeconds: number;
  /** GPU utilisation 0–1 across its GPUs, when it has any */
  gpuUtilization: number | null;
  /** SSH sessions open inside */
  sshSessions: number;
  /** Jupyter kernels currently executing */
  busyKernels: number;
  /** when the app last reported activity itself (e.g. Jupyter's last_activity), epoch ms */
  appLastActivity: number | null;
}

export interface Gpu {
  index: number;
  type: string;
  uuid: string;
  /** workspace id holding it, or null */
  heldBy: string | null;
}

export interface Capacity {
  cpuMilli: number;
  memoryBytes: number;
  gpus: Gpu[];
  /** guarantees of what runs now */
  allocated: { cpuMilli: number; memoryBytes: number };
  /** tiers this runtime can run, and why not for the others */
  tiers: Partial<Record<Tier, string | true>>;
  /** whether sandboxes can reach the internet when a profile allows it, and why not */
  publicEgress: true | string;
}

/** What `waitReady` reports while a workspace is on its way. */
export interface ReadyProgress {
  phase: 'pending' | 'starting';
  message: string;
}

export interface LogOptions {
  /** only the last N lines */
  tail?: number;
  /** keep streaming new output */
  follow?: boolean;
  signal?: AbortSignal;
}

/** An image in a runtime's store (the local runtime's; Kubernetes nodes pull their own). */
export interface ImageInfo {
  name: string;
  /** what it was copied from, as a skopeo reference */
  source: string;
  /** the manifest's digest */
  digest: string;
  /** the manifest, config and layers as stored */
  sizeBytes: number;
  importedAt: string;
  /** whether a root is unpacked and ready for starts */
  unpacked: boolean;
  /** workspaces whose sandbox (running or stopped) was made from it */
  usedBy: string[];
}

/** A step of an import or an unpack. */
export interface ImageProgress {
  name: string;
  state: 'importing' | 'unpacking' | 'ready' | 'failed' | 'removed';
  message: string;
  /** the image once it is ready */
  image?: ImageInfo;
}

/** A runtime's images: what admins import, list and remove. */
export interface ImageStore {
  list(): Promise<ImageInfo[]>;
  get(name: string): Promise<ImageInfo>;
  /**
   * Starts copying an image in (skopeo). Resolves once the source and name
   * are checked, with `done`, which resolves when the image is stored;
   * `progress` hears each step. The name defaults to the reference's.
   */
  import(source: string, opts?: { name?: string; progress?(p: ImageProgress): void }): Promise<{ name: string; done: Promise<ImageInfo> }>;
  /** names being imported now */
  importing(): string[];
  /** Every image's steps, as they happen. */
  subscribe(listener: (p: ImageProgress) => void): () => void;
  /** Removes an image; refused while a workspace uses it. */
  remove(name: string): Promise<void>;
}

/** What a start reports while it prepares (an image imported or unpacked on first use). */
export interface StartOptions {
  progress?(message: string): void;
}

export interface Runtime {
  readonly name: string;
  /** namespace, quota, rbac, policies (k8s); directories and host uids (local) */
  ensureTenant(team: string): Promise<void>;
  /** Idempotent: makes the workspace run as specified. Resolves once its sandbox process is started, not when the app is ready. */
  start(spec: WorkspaceSpec, opts?: StartOptions): Promise<void>;
  /** Stops it (SIGTERM, then SIGKILL after a grace period), keeping the home. Idempotent. */
  stop(workspaceId: string): Promise<void>;
  /** Removes everything of it; the home only with `purge`. Idempotent. */
  remove(workspaceId: string, opts: { purge: boolean }): Promise<void>;
  /** Every sandbox the runtime holds now, running or not: the reconciler's full resync and its adoption at start. */
  inventory(): Promise<Observation[]>;
  /** Phase changes as they happen (from a watch, or by polling), until `signal` aborts. */
  observe(signal: AbortSignal): AsyncIterable<Observation>;
  /** How to reach the app (`http`) or a fresh sshd (`ssh`); rejects when the workspace is not running. */
  endpoint(workspaceId: string, port: 'http' | 'ssh'): Promise<Endpoint>;
  logs(workspaceId: string, opts?: LogOptions): AsyncIterable<string>;
  activity(workspaceId: string): Promise<Activity>;
  /**
   * Replaces who may log in to the workspace's sshd (`authorized_keys`
   * lines), in a running workspace at once: the next SSH connection sees
   * the new list. Nothing when it does not run (the next start takes the
   * list from its spec).
   */
  authorize(workspaceId: string, authorizedKeys: string[]): Promise<void>;
  /**
   * Replaces the workload identity token of a running workspace
   * (`/var/run/secrets/atrium/token`, atomically: a reader sees the old
   * token or the new one). Nothing when it does not run. Runtimes whose
   * platform issues its own tokens (Kubernetes' projected service-account
   * tokens) leave this out, and Atrium issues none for them.
   */
  workloadToken?(workspaceId: string, token: string): Promise<void>;
  /**
   * Waits until the workspace is ready from what the runtime observes (a
   * pod's readiness), reporting scheduling and start-up on the way; runtimes
   * without it are probed through `endpoint`. Waiting for capacity (phase
   * `pending`) has no deadline; `timeoutMs` counts otherwise.
   */
  waitReady?(workspaceId: string, opts: { timeoutMs: number; signal: AbortSignal; progress(p: ReadyProgress): Promise<void> | void }): Promise<void>;
  /** Shows a message to the people working in the workspace (its open terminals). */
  notify(workspaceId: string, message: string): Promise<void>;
  capacity(): Promise<Capacity>;
  /** the images admins manage, where the runtime keeps its own (absent: its nodes pull them) */
  images?: ImageStore;
  /**
   * Makes the runtime's volumes those given: storage of deleted volumes is
   * removed, grown ones are resized (Kubernetes: PersistentVolumeClaims
   * applied in their teams' namespaces).
   */
  syncVolumes?(volumes: VolumeState[]): Promise<void>;
  /** Stops what the runtime runs for itself (watches, forwarders); workspaces keep running. */
  close?(): Promise<void>;
}

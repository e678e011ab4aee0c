/** What people ask for. */
export const DESIRED_STATES = ['running', 'stopped', 'deleted'] as const;
export type DesiredState = (typeof DESIRED_STATES)[number];

/** What the runtime reports. */
/** `unknown`: the cluster the workspace runs on cannot be reached; it returns to what the runtime sees once it can. */
export const PHASES = ['pending', 'starting', 'running', 'stopping', 'stopped', 'failed', 'unknown'] as const;
export type Phase = (typeof PHASES)[number];

export const ENVIRONMENT_KINDS = ['jupyter', 'shell', 'custom'] as const;
export type EnvironmentKind = (typeof ENVIRONMENT_KINDS)[number];

export const TIERS = ['standard', 'sandboxed'] as const;
export type Tier = (typeof TIERS)[number];

/** Resources a workspace was admitted with, copied from its profile at creation. */
export interface WorkspaceResources {
  cpuRequestMilli: number;
  cpuLimitMilli: number;
  memoryRequestBytes: number;
  memoryLimitBytes: number;
  gpuCount: number;
  gpuType: string | null;
  storageBytes: number;
}

/**
 * Whether a workspace is charged for CPU, memory and GPUs: while it is asked
 * to run (and has not failed) or while the runtime still reports it holding
 * resources.
 */
export function chargesCompute(desired: DesiredState, phase: Phase): boolean {
  if (phase === 'starting' || phase === 'running' || phase === 'stopping' || phase === 'unknown') return true;
  return desired === 'running' && phase !== 'failed' && phase !== 'stopped';
}

/** Phases the reconciler may move a workspace to from each phase. */
const NEXT: Record<Phase, readonly Phase[]> = {
  pending: ['starting', 'stopping', 'stopped', 'failed'],
  // a cluster's scheduler can leave a started workspace waiting for capacity
  starting: ['pending', 'running', 'stopping', 'failed'],
  running: ['stopping', 'failed'],
  stopping: ['stopped', 'failed'],
  stopped: ['pending', 'starting'],
  failed: ['pending', 'starting', 'stopping', 'stopped'],
  unknown: ['pending', 'starting', 'running', 'stopping', 'stopped', 'failed'],
};

export function canTransition(from: Phase, to: Phase): boolean {
  // any phase can become unknown: the cluster went away under it
  return from === to || to === 'unknown' || NEXT[from].includes(to);
}

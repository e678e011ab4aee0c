import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import type { Phase } from '../../domain/index.js';

/** Waiting reasons that no retry fixes: the start fails with them. */
const FATAL_WAITING = new Set(['InvalidImageName', 'CreateContainerConfigError', 'CreateContainerError', 'ErrImageNeverPull', 'CrashLoopBackOff', 'RunContainerError']);

export interface PodPhase {
  phase: Phase;
  reason?: string;
}

/**
 * A workspace's phase from its StatefulSet and pod, as the watches last saw
 * them: the one place Kubernetes states become Atrium phases.
 */
export function workspacePhase(sts: V1StatefulSet | undefined, pod: V1Pod | undefined): PodPhase | undefined {
  if (!sts && !pod) return undefined;
  const replicas = sts?.spec?.replicas ?? 0;
  if (!pod) return replicas === 0 ? { phase: 'stopped' } : { phase: 'starting', reason: 'waiting for the pod to be created' };
  if (pod.metadata?.deletionTimestamp || replicas === 0) return { phase: 'stopping' };
  const status = pod.status ?? {};
  const container = status.containerStatuses?.[0];
  const waiting = container?.state?.waiting;
  const terminated = container?.state?.terminated ?? container?.lastState?.terminated;
  if (status.phase === 'Failed' || status.phase === 'Succeeded') {
    return { phase: 'failed', reason: terminated ? `app exited with code ${terminated.exitCode}${terminated.reason ? ` (${terminated.reason})` : ''}` : status.message ?? status.reason ?? 'the pod stopped' };
  }
  if (waiting?.reason && FATAL_WAITING.has(waiting.reason)) {
    const exited = terminated ? `app exited with code ${terminated.exitCode}; ` : '';
    return { phase: 'failed', reason: `${exited}${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}` };
  }
  if (status.phase === 'Pending') {
    const scheduled = status.conditions?.find((c) => c.type === 'PodScheduled');
    if (scheduled?.status === 'False') return { phase: 'pending', reason: scheduled.message ?? scheduled.reason ?? 'waiting for a node' };
    return { phase: 'starting', reason: waiting?.reason ? `${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}` : 'the pod is starting' };
  }
  const ready = status.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  if (status.phase === 'Running' && ready) return { phase: 'running' };
  return { phase: 'starting', reason: 'waiting for the app to answer' };
}

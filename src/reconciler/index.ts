import { setMaxListeners } from 'node:events';
import { logLines, platformMessage } from '../domain/index.js';
import type { Store, Workspace } from '../store/index.js';
import type { Observation, Runtime, WorkspaceSpec } from '../runtime/index.js';
import { readiness } from './readiness.js';
import { authorizedKeysOf, createSshAccessSync } from './ssh-access.js';
import { volumesOf, workspaceSpec, type WorkspaceKeys } from './spec.js';
import type { WorkloadTokenSync } from './workload-tokens.js';

export { createCuller, type Culler } from './culler.js';
export { authorizedKeysOf, type AuthorizedKeys } from './ssh-access.js';
export { workspaceSpec, type WorkspaceKeys } from './spec.js';
export { createClusterInputs, type ClusterInputs } from './cluster-inputs.js';
export { coalesced } from './coalesced.js';
export { createWorkloadTokenSync, type WorkloadTokenSync, type HeldToken } from './workload-tokens.js';


export interface ReconcilerOptions {
  store: Store;
  runtime: Runtime;
  log: { info(obj: unknown, msg?: string): void; warn(obj: unknown, msg?: string): void; error(obj: unknown, msg?: string): void };
  /** how long an app may take to answer before the start counts as failed */
  readinessTimeoutMs?: number;
  /** how often every unsettled workspace is looked at again, besides events */
  resyncMs?: number;
  /** the per-workspace SSH keys the control plane holds */
  sshKeys: WorkspaceKeys;
  /** how often running workspaces' authorized_keys are compared with who may enter, besides on every change */
  sshAccessEveryMs?: number;
  /** workload identity tokens, for a runtime that takes them from Atrium */
  workloadTokens?: WorkloadTokenSync;
}

/**
 * The reason a sandbox stopped: the platform's last word on the app in its
 * log (`app exited …`, `app killed …`, `cannot …`). Only lines the platform
 * marked count; an app can print text that looks the same, and that must
 * never become the reason people are shown.
 */
export function failureReason(logTail: string | undefined, fallback: string): string {
  const said = logLines(logTail ?? '')
    .map(platformMessage)
    .filter((m): m is string => m !== undefined && /^(app exited|app killed|cannot)/.test(m));
  return said.at(-1) ?? fallback;
}

/**
 * Drives observed phase toward desired state (design §5), one workspace at a
 * time each, idempotently, with an event for every step. At start it adopts
 * the sandboxes that run and cleans up what a crash left half-made.
 */
export function createReconciler(opts: ReconcilerOptions) {
  const { store, runtime, log } = opts;
  const states = store.workspaceStates;
  const readinessTimeoutMs = opts.readinessTimeoutMs ?? 90_000;
  const inFlight = new Map<string, Promise<void>>();
  const again = new Set<string>();
  const abort = new AbortController();
  // every start waiting for its workspace listens on it
  setMaxListeners(0, abort.signal);
  let timer: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;
  const authorizedKeys = authorizedKeysOf(store, opts.sshKeys);
  const sshAccess = createSshAccessSync({ store, runtime, authorizedKeys, log, everyMs: opts.sshAccessEveryMs ?? 60_000 });
  const tokens = opts.workloadTokens;

  async function specFor(ws: Workspace): Promise<WorkspaceSpec> {
    const lines = await authorizedKeys(ws);
    sshAccess.given(ws.id, lines);
    const spec = workspaceSpec(ws, lines, opts.sshKeys, await volumesOf(store, ws));
    if (tokens) spec.workloadToken = await tokens.forStart(ws);
    return spec;
  }

  async function sandboxRunning(id: string): Promise<Observation | undefined> {
    return (await runtime.inventory()).find((o) => o.workspaceId === id);
  }

  async function start(ws: Workspace): Promise<void> {
    if (ws.phase !== 'starting') {
      ws = await states.report(ws.id, { phase: 'starting', message: 'creating the sandbox', observedGeneration: ws.generation });
    }
    try {
      const steps: Promise<unknown>[] = [];
      // slow preparations (an image imported or unpacked on its first use) show as steps of the start
      await runtime.start(await specFor(ws), { progress: (message) => void steps.push(states.note(ws.id, 'step', message).catch(() => undefined)) });
      await Promise.all(steps);
      if (runtime.waitReady) {
        let current = ws;
        await runtime.waitReady(ws.id, {
          timeoutMs: readinessTimeoutMs,
          signal: abort.signal,
          progress: async (p) => {
            // waiting for capacity shows as pending with the scheduler's reason; the rest are steps of the start
            if (p.phase !== current.phase) current = await states.report(ws.id, { phase: p.phase, message: p.message, ...(p.phase === 'pending' ? { reason: p.message } : {}), observedGeneration: ws.generation });
            else await states.note(ws.id, 'step', p.message);
          },
        });
        if (current.phase === 'pending') await states.report(ws.id, { phase: 'starting', message: 'scheduled', observedGeneration: ws.generation });
      } else {
        await states.note(ws.id, 'step', 'sandbox started; waiting for the app to answer');
        await readiness(runtime, ws, readinessTimeoutMs, abort.signal);
      }
      const running = await states.report(ws.id, { phase: 'running', message: `${ws.spec.environment.kind} is ready`, observedGeneration: ws.generation });
      // who may enter can have changed while it started (a pass for that change skipped it: it did not run yet)
      void sshAccess.check(running);
      tokens?.started(ws.id);
    } catch (err) {
      tokens?.forget(ws.id);
      const seen = await sandboxRunning(ws.id);
      const logTail = seen?.logTail ?? '';
      const reason = failureReason(logTail, (err as Error).message);
      await runtime.stop(ws.id).catch((e: unknown) => log.error({ err: e, workspace: ws.id }, 'stop after a failed start failed'));
      await states.report(ws.id, { phase: 'failed', reason, message: `start failed: ${reason}`, data: { logTail }, observedGeneration: ws.generation });
    }
  }

  async function stop(ws: Workspace, why: string): Promise<void> {
    if (ws.phase !== 'stopping' && ws.phase !== 'stopped' && ws.phase !== 'pending') {
      ws = await states.report(ws.id, { phase: 'stopping', message: why, observedGeneration: ws.generation });
    }
    tokens?.forget(ws.id);
    await runtime.stop(ws.id);
    if (ws.phase !== 'stopped') await states.report(ws.id, { phase: 'stopped', message: 'stopped; the home is kept', observedGeneration: ws.generation });
  }

  async function reconcile(id: string): Promise<void> {
    const ws = await states.get(id);
    if (!ws) return;
    if (ws.desired === 'deleted') {
      if (ws.phase === 'starting' || ws.phase === 'running') await states.report(ws.id, { phase: 'stopping', message: 'deleting', observedGeneration: ws.generation });
      tokens?.forget(ws.id);
      await runtime.remove(ws.id, { purge: ws.purge });
      await states.note(ws.id, 'deleted', ws.purge ? 'sandbox and home deleted' : 'sandbox deleted; the home image is kept');
      await states.forget(ws.id);
      return;
    }
    if (ws.desired === 'stopped') {
      if (ws.phase === 'stopped' && ws.observedGeneration === ws.generation) return;
      if (ws.phase === 'failed') {
        await runtime.stop(ws.id);
        await states.report(ws.id, { phase: 'stopped', message: 'stopped', observedGeneration: ws.generation });
        return;
      }
      await stop(ws, 'stopping: SIGTERM, then SIGKILL after the grace period');
      return;
    }
    // desired running
    if (ws.phase === 'failed' && ws.observedGeneration === ws.generation) return; // waits for a new start request
    if (ws.phase === 'running' || ws.phase === 'unknown') {
      const seen = await sandboxRunning(ws.id);
      if (seen?.phase === 'unknown') {
        // its cluster cannot be reached: nothing can be done there, and nothing is assumed
        if (ws.phase !== 'unknown') await states.report(ws.id, { phase: 'unknown', reason: seen.reason ?? 'the cluster cannot be reached', message: seen.reason ?? 'the cluster cannot be reached' });
        return;
      }
      if (ws.phase === 'unknown' && seen?.phase === 'running') {
        await states.report(ws.id, { phase: 'running', message: 'the cluster can be reached again; the workspace runs' });
        return;
      }
      if (ws.phase === 'unknown' && (seen?.phase === 'pending' || seen?.phase === 'starting')) {
        await start(ws); // back, but its pod was replaced meanwhile: wait for it as for any start
        return;
      }
      if (seen?.phase === 'running') return;
      if (seen?.phase === 'stopping') {
        // a stop a control plane began before it died, since asked to run again: finish it, then start afresh
        await stop(ws, 'finishing a stop interrupted by a restart of the control plane; starting again after');
        schedule(ws.id);
        return;
      }
      const reason = failureReason(seen?.logTail, 'the sandbox stopped');
      await runtime.stop(ws.id);
      await states.report(ws.id, { phase: 'failed', reason, message: `stopped unexpectedly: ${reason}`, data: { logTail: seen?.logTail ?? '' } });
      return;
    }
    if (ws.phase === 'stopping') {
      await runtime.stop(ws.id);
      await states.report(ws.id, { phase: 'stopped', message: 'stopped; the home is kept' });
      return;
    }
    await start(ws);
  }

  /** Runs reconcile for one workspace, never two at once for the same one, and once more if asked meanwhile. */
  function schedule(id: string): void {
    if (inFlight.has(id)) {
      again.add(id);
      return;
    }
    const p = reconcile(id)
      .catch((err: unknown) => log.error({ err, workspace: id }, 'reconcile failed'))
      .finally(() => {
        inFlight.delete(id);
        if (again.delete(id) && !abort.signal.aborted) schedule(id);
      });
    inFlight.set(id, p);
  }

  async function resync(): Promise<void> {
    for (const ws of await states.unsettled()) schedule(ws.id);
  }

  /**
   * Adoption after a restart: sandboxes that should run are kept as they
   * are; any other sandbox, and anything a crash left half-made, is removed;
   * workspaces caught mid-step are reconciled again from the start of it.
   */
  async function adopt(): Promise<void> {
    const inventory = await runtime.inventory();
    // one query per 500 sandboxes for what the decisions below read, not a whole workspace each
    const known = await states.phases(inventory.map((o) => o.workspaceId));
    for (const seen of inventory) {
      const found = known.get(seen.workspaceId);
      const ws = found && { id: seen.workspaceId, ...found };
      if (!ws) {
        log.warn({ workspace: seen.workspaceId }, 'removing a sandbox no workspace owns (its home image is kept)');
        await runtime.remove(seen.workspaceId, { purge: false });
        continue;
      }
      if (ws.desired === 'running' && ws.phase === 'running' && seen.phase === 'running') continue; // adopted as it runs
      if (seen.phase === 'unknown') {
        schedule(ws.id); // its cluster cannot be reached now: shown unknown, touched once it answers
        continue;
      }
      if (ws.desired === 'running' && ws.phase === 'running' && seen.phase === 'stopping') {
        schedule(ws.id); // reconcile finishes the interrupted stop and starts it again
        continue;
      }
      // Anything else was caught mid-step: clear it away and let reconcile redo the step from its start.
      await runtime.stop(ws.id);
      schedule(ws.id);
    }
    await resync();
  }

  async function watch(): Promise<void> {
    for await (const o of runtime.observe(abort.signal)) {
      const ws = await states.get(o.workspaceId);
      if (ws && ws.desired === 'running' && (o.phase !== 'running' || ws.phase === 'unknown') && !inFlight.has(ws.id)) schedule(ws.id);
    }
  }

  return {
    /** Resolves once every access change seen so far has reached running workspaces' authorized_keys. */
    sshAccessSettled: () => sshAccess.settled(),
    async start(): Promise<void> {
      // Requests go on arriving while adoption acts on sandboxes outside the per-workspace order: a start or stop asked
      // meanwhile waits until adoption is done, or adoption could stop a sandbox that request's reconcile has just kept.
      const asked = new Set<string>();
      let adopting = true;
      unsubscribe = states.onIntent((id) => (adopting ? asked.add(id) : schedule(id)));
      try {
        await adopt();
      } finally {
        adopting = false;
        for (const id of asked) schedule(id);
      }
      sshAccess.start();
      tokens?.start();
      timer = setInterval(() => void resync().catch((err: unknown) => log.error({ err }, 'resync failed')), opts.resyncMs ?? 10_000);
      timer.unref();
      void watch().catch((err: unknown) => {
        if (!abort.signal.aborted) log.error({ err }, 'watching the runtime failed');
      });
    },
    /** Waits for steps under way; new ones are not begun. */
    async stop(): Promise<void> {
      abort.abort();
      unsubscribe?.();
      await sshAccess.stop();
      await tokens?.stop();
      if (timer) clearInterval(timer);
      await Promise.allSettled([...inFlight.values()]);
    },
  };
}

export type Reconciler = ReturnType<typeof createReconciler>;

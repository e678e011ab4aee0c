import type { IssuedToken, WorkloadIdentity } from '../identity/index.js';
import type { Runtime } from '../runtime/index.js';
import type { Store, Workspace } from '../store/index.js';
import { coalesced } from './coalesced.js';

/** A token is replaced once this share of its lifetime has passed (the kubelet's rule for projected tokens). */
const REFRESH_AT = 0.8;

/** What a workspace holds now, without the token itself. */
export type HeldToken = Omit<IssuedToken, 'token'>;

/**
 * Keeps a workload identity token in every running workspace of a runtime
 * that takes them (`runtime.workloadToken`): one with the start's spec, a
 * fresh one once 80% of its lifetime has passed, none once the workspace no
 * longer runs. Also rotates the signing key when it is due.
 */
export function createWorkloadTokenSync(opts: {
  store: Store;
  runtime: Pick<Runtime, 'workloadToken'>;
  issuer: WorkloadIdentity;
  log: { error(obj: unknown, msg?: string): void };
}) {
  const { store, runtime, issuer } = opts;
  /** what each workspace was given last */
  const held = new Map<string, HeldToken>();
  /** workspaces whose start holds a token the running list does not show yet */
  const starting = new Set<string>();
  const everyMs = Math.min(60_000, Math.max(1000, Math.floor(issuer.tokenLifetimeMs / 10)));
  let timer: NodeJS.Timeout | undefined;
  let lastRotationCheck = 0;

  async function issue(ws: Workspace): Promise<IssuedToken> {
    const t = await issuer.issue({ workspaceId: ws.id, team: ws.team, workspace: ws.name, owner: ws.owner, profile: ws.profile });
    const { token: _token, ...rest } = t;
    held.set(ws.id, rest);
    return t;
  }

  const due = (t: HeldToken | undefined, now: number) => !t || now >= t.issuedAt + (t.expiresAt - t.issuedAt) * REFRESH_AT;

  const pass = coalesced(async () => {
    if (Date.now() - lastRotationCheck >= 60_000) {
      lastRotationCheck = Date.now();
      await issuer.rotateIfDue().catch((err: unknown) => opts.log.error({ err }, 'rotating the workload identity signing key failed'));
    }
    const seen = new Set<string>();
    for (let afterId: string | undefined, page: Workspace[]; (page = await store.workspaceStates.running({ limit: 500, ...(afterId === undefined ? {} : { afterId }) })).length > 0; afterId = page.at(-1)!.id) {
      for (const ws of page) {
        seen.add(ws.id);
        if (!due(held.get(ws.id), Date.now())) continue;
        try {
          const t = await issue(ws);
          await runtime.workloadToken!(ws.id, t.token);
        } catch (err) {
          opts.log.error({ err, workspace: ws.id }, 'refreshing the workload token failed; tried again at the next pass');
        }
      }
    }
    // stopped or gone: nothing more is issued for them
    for (const id of held.keys()) if (!seen.has(id) && !starting.has(id)) held.delete(id);
  });

  return {
    /** A token for a start's spec; the workspace holds it from its first process on. */
    async forStart(ws: Workspace): Promise<string> {
      starting.add(ws.id);
      return (await issue(ws)).token;
    },
    /** The start is over (running, or failed). */
    started(workspaceId: string): void {
      starting.delete(workspaceId);
    },
    /** The workspace stopped: its token is not refreshed again. */
    forget(workspaceId: string): void {
      starting.delete(workspaceId);
      held.delete(workspaceId);
    },
    /** What the workspace holds now, if it runs. */
    current(workspaceId: string): HeldToken | undefined {
      return held.get(workspaceId);
    },
    start(): void {
      timer = setInterval(() => void pass.run(), everyMs);
      timer.unref();
      void pass.run();
    },
    async stop(): Promise<void> {
      if (timer) clearInterval(timer);
      await pass.idle();
    },
  };
}

export type WorkloadTokenSync = ReturnType<typeof createWorkloadTokenSync>;

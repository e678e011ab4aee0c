import { createHash } from 'node:crypto';
import { can, type Subject } from '../domain/index.js';
import type { Runtime } from '../runtime/index.js';
import type { AccessTarget, Store, Workspace } from '../store/index.js';
import { coalesced } from './coalesced.js';

/** The per-workspace keys the control plane holds (`loadSshKeys` in identity). */
export interface WorkspaceSshKeys {
  /** the public key line the gateway logs in with */
  gatewayPublicKey(workspaceId: string): string;
}

/** The SSH keys of a team's members, as `store.credentials.sshKeys.ofTeam` reads them. */
type TeamKeys = Awaited<ReturnType<Store['credentials']['sshKeys']['ofTeam']>>;

/**
 * Who may enter a workspace over SSH, as `authorized_keys` lines. `teams`,
 * given, keeps each team's keys as read once: a pass over every running
 * workspace reads each team's once, not once per workspace.
 */
export type AuthorizedKeys = (ws: AccessTarget, teams?: Map<string, Promise<TeamKeys>>) => Promise<string[]>;

/**
 * The `authorized_keys` lines of a workspace: the gateway's key for it, and
 * the registered keys of everyone `can()` gives the connect right (its
 * owner; the team's editors and owners when it is shared): the tunnel path
 * ends in the workspace's own sshd, so that is where this check lives.
 * Every line is restricted to a terminal and local port forwarding; agent
 * forwarding is added only where the profile allows it, and then only for
 * the owner's keys and the gateway's (which forwards an agent only for the
 * owner): code in the workspace could otherwise use the agent of whoever
 * connects.
 */
export function authorizedKeysOf(store: Store, keys: WorkspaceSshKeys): AuthorizedKeys {
  return async (ws, teams) => {
    const resource = { kind: 'workspace', teamId: ws.teamId, ownerId: ws.ownerId, shared: ws.shared } as const;
    const agent = ws.spec.agentForwarding === true;
    const lines = [`restrict,pty,port-forwarding${agent ? ',agent-forwarding' : ''} ${keys.gatewayPublicKey(ws.id)}`];
    let members = teams?.get(ws.teamId);
    if (!members) {
      members = store.credentials.sshKeys.ofTeam(ws.teamId);
      teams?.set(ws.teamId, members);
    }
    for (const m of await members) {
      if (m.disabled) continue;
      const subject: Subject = { kind: 'user', id: m.userId, username: m.username, admin: m.admin, roles: new Map([[ws.teamId, m.role]]) };
      if (!can(subject, 'workspace.connect', resource)) continue;
      lines.push(`restrict,pty,port-forwarding${agent && m.userId === ws.ownerId ? ',agent-forwarding' : ''} ${m.publicKey} ${m.username}`);
    }
    return lines;
  };
}

/** A short digest of a list of `authorized_keys` lines: what is kept of each running workspace's, to tell a change. */
function digestOf(lines: string[]): string {
  return createHash('sha256').update(lines.join('\n')).digest('base64');
}

/** The longest a request waits for its access change to reach running workspaces. */
const SETTLE_WAIT_MS = 10_000;

/**
 * Keeps the `authorized_keys` of running workspaces current: after any
 * change to people, keys, memberships or sharing, and every `everyMs`
 * (changes other control-plane processes made), each running workspace
 * whose list differs gets the new one at once, not at its next start.
 */
export function createSshAccessSync(opts: {
  store: Store;
  runtime: Pick<Runtime, 'authorize'>;
  authorizedKeys: AuthorizedKeys;
  log: { error(obj: unknown, msg?: string): void };
  everyMs: number;
}) {
  const { store, runtime } = opts;
  /** what each workspace was last given, as a digest of its lines (kept for every running workspace) */
  const written = new Map<string, string>();
  /** access changes seen, and how many of them the last finished pass covered */
  let requested = 0;
  let completed = 0;
  const waiting = new Set<{ target: number; resolve: () => void }>();
  let timer: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;

  async function syncAll(): Promise<void> {
    const seen = new Set<string>();
    // each team's keys read once per pass (a change meanwhile asks for another pass); pages small, so a page is
    // done with before the collector moves it to the old generation (with 10,000 workspaces, pages of 500 grew the
    // heap by 80 MB at every start, and the heap does not give that back)
    const teams = new Map<string, Promise<TeamKeys>>();
    for (let afterId: string | undefined, page: AccessTarget[]; (page = await store.workspaceStates.runningAccess({ limit: 100, ...(afterId === undefined ? {} : { afterId }) })).length > 0; afterId = page.at(-1)!.id) {
      for (const ws of page) {
        seen.add(ws.id);
        // one workspace that cannot be written (stopping at this moment) holds up no other; the next pass tries it again
        await syncOne(ws, teams).catch((err: unknown) => opts.log.error({ err, workspace: ws.id }, 'updating authorized_keys failed'));
      }
    }
    for (const id of written.keys()) if (!seen.has(id)) written.delete(id);
  }

  async function syncOne(ws: AccessTarget, teams?: Map<string, Promise<TeamKeys>>): Promise<void> {
    const lines = await opts.authorizedKeys(ws, teams);
    const digest = digestOf(lines);
    if (written.get(ws.id) === digest) return;
    await runtime.authorize(ws.id, lines);
    written.set(ws.id, digest);
  }

  /** Runs a sync now, or once more after the one under way; resolves when the lists are current. */
  const passes = coalesced(async () => {
    const covers = requested;
    await syncAll().catch((err: unknown) => opts.log.error({ err }, 'updating authorized_keys of running workspaces failed'));
    completed = covers;
    for (const w of waiting) {
      if (w.target <= completed) {
        waiting.delete(w);
        w.resolve();
      }
    }
  });
  const sync = passes.run;

  return {
    sync,
    /**
     * Brings one workspace's list up to date: for a workspace that has just
     * come to run, whose list was read when it began to start (a pass for an
     * access change meanwhile skipped it, as it did not run yet).
     */
    check: (ws: Workspace): Promise<void> => syncOne(ws).catch((err: unknown) => opts.log.error({ err, workspace: ws.id }, 'updating authorized_keys failed')),
    /** Forgets what a workspace was given (it stopped or started afresh with the list in its spec). */
    given(workspaceId: string, lines: string[] | undefined): void {
      if (lines) written.set(workspaceId, digestOf(lines));
      else written.delete(workspaceId);
    },
    /**
     * Resolves once every access change seen so far has reached running
     * workspaces, by a pass that began after it; or after `SETTLE_WAIT_MS`,
     * so no request waits on a slow or failing pass for long.
     */
    settled(): Promise<void> {
      const target = requested;
      if (completed >= target) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const w = { target, resolve };
        waiting.add(w);
        setTimeout(() => {
          if (waiting.delete(w)) resolve();
        }, SETTLE_WAIT_MS).unref();
      });
    },
    start(): void {
      unsubscribe = store.onAccessChange(() => {
        requested++;
        void sync();
      });
      timer = setInterval(() => void sync(), opts.everyMs);
      timer.unref();
      void sync();
    },
    async stop(): Promise<void> {
      unsubscribe?.();
      if (timer) clearInterval(timer);
      await passes.idle();
    },
  };
}

export type SshAccessSync = ReturnType<typeof createSshAccessSync>;

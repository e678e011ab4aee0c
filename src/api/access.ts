import { can, Forbidden, NotFound, type Action, type Profile, type Quota } from '../domain/index.js';
import type { Authenticated, Cookies, Identity, Oidc, WorkloadIdentity } from '../identity/index.js';
import type { Machine, Store, Team, Workspace } from '../store/index.js';
import type { ClusterInputs, HeldToken } from '../reconciler/index.js';
import type { ImageStore, KubernetesConfig, Runtime } from '../runtime/index.js';

/** A workspace's output, as the runtime keeps it. */
export type WorkspaceLogs = Pick<Runtime, 'logs'>;
import type { Lists } from './lists.js';

/** What every route factory is given. */
export interface ApiDeps {
  store: Store;
  identity: Identity;
  cookies: Cookies;
  profiles: Profile[];
  defaultQuota: Quota;
  https: boolean;
  sessionTtlSeconds: number;
  access: Access;
  /**
   * The one thing the API reads from the runtime: a workspace's logs. Every
   * change goes through the store's intent and the reconciler, so no route
   * can start, stop or remove a sandbox behind its back. Absent when no
   * runtime is configured: workspaces are then admitted and stay pending.
   */
  logs: WorkspaceLogs | undefined;
  /** OpenID Connect providers people sign in with (`auth.oidc`) */
  oidc: Oidc | undefined;
  /** the URL people use (config publicUrl), for redirects back from identity providers */
  publicUrl: string | undefined;
  /** the runtime's images, when it keeps its own (the local runtime) */
  images: ImageStore | undefined;
  machines: Machine[];
  /** the clusters workspaces run on: this machine, or the configured Kubernetes clusters */
  clusters: Array<{ name: string; kind: 'local' | 'kubernetes' }>;
  /** where pages of workspaces are read and written out */
  lists: Lists;
  /** SSH: the gateway people connect to, and the host key of each workspace's sshd */
  ssh: SshInfo | undefined;
  /** what rendering a cluster's objects takes; absent, no cluster has any */
  kubernetes: KubernetesRendering | undefined;
  /** workload identity, unless disabled */
  workload: WorkloadInfo | undefined;
}

/** Atrium as an issuer of workload tokens, and what running workspaces hold. */
export interface WorkloadInfo {
  identity: WorkloadIdentity;
  /** whether the runtime takes its tokens from Atrium (the local runtime) */
  tokensFromAtrium: boolean;
  /** the token a running workspace holds, without the token itself */
  held(workspaceId: string): HeldToken | undefined;
}

/** What the API renders clusters' objects from: the `kubernetes` config and the store's teams and workspaces. */
export interface KubernetesRendering {
  config: KubernetesConfig;
  /** a pod's grace between SIGTERM and SIGKILL */
  stopGraceSeconds: number;
  inputs: ClusterInputs;
}

/** What the API tells people about reaching workspaces over SSH. */
export interface SshInfo {
  /** the gateway, when it runs (its port is known once it listens); `requestHost`: the host the person reached the API by */
  gateway(requestHost: string): { host: string; port: number; hostKey: string; fingerprint: string } | null;
  hostKey(workspaceId: string): { publicKey: string; fingerprint: string };
}

/** Refuses anyone but a platform admin: the one admin check, for routes declared `admin` and for admin-only query options. */
export function requireAdmin(auth: Authenticated): void {
  if (!can(auth.subject, 'platform.admin', { kind: 'platform' })) throw new Forbidden('only platform admins may do this');
}

/**
 * Loads a resource and applies `can()` to it. Something the caller may not
 * even see is reported exactly like something that does not exist.
 */
export function createAccess(store: Store) {
  return {
    require(auth: Authenticated, action: Action, resource: Parameters<typeof can>[2], what = 'this'): void {
      if (!can(auth.subject, action, resource)) throw new Forbidden(`you may not ${action.replace('.', ' ')} ${what}`);
    },

    requireAdmin,

    async team(auth: Authenticated, name: string, action: Action): Promise<Team> {
      const team = await store.teams.byName(name);
      if (!team || !can(auth.subject, 'team.read', { kind: 'team', id: team.id })) throw new NotFound(`team ${name}`);
      const resource = { kind: 'team', id: team.id } as const;
      const allowed = action === 'platform.admin' ? can(auth.subject, action, { kind: 'platform' }) : can(auth.subject, action, resource);
      if (!allowed) throw new Forbidden(`your role in team ${name} does not allow this`);
      return team;
    },

    async workspace(auth: Authenticated, teamName: string, wsName: string, action: Action): Promise<{ team: Team; ws: Workspace }> {
      const team = await store.teams.byName(teamName);
      const ws = team && (await store.workspaces.byName(team.id, wsName));
      const resource = ws && ({ kind: 'workspace', teamId: ws.teamId, ownerId: ws.ownerId, shared: ws.shared } as const);
      if (!team || !ws || !resource || !can(auth.subject, 'workspace.read', resource)) throw new NotFound(`workspace ${teamName}/${wsName}`);
      if (!can(auth.subject, action, resource)) throw new Forbidden(`you may not ${action.split('.')[1]} workspace ${teamName}/${wsName}`);
      return { team, ws };
    },
  };
}

export type Access = ReturnType<typeof createAccess>;

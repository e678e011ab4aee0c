import type { ApiClient } from './client.ts';
import type {
  AuditView,
  Cluster,
  GrantView,
  ImageImport,
  ImageImportStarted,
  ImageView,
  MemberView,
  MeView,
  NewTeam,
  NewUser,
  NewVolume,
  NewWorkspace,
  Page,
  PoolView,
  ProfileView,
  Quota,
  QuotaChange,
  Role,
  SshAccessView,
  SshKeyView,
  TeamView,
  TokenCreatedView,
  TokenView,
  UsageView,
  UserChange,
  UserCreatedView,
  UserView,
  VolumeChange,
  VolumeView,
  WorkspaceView,
} from './types.ts';

const enc = encodeURIComponent;
const ws = (team: string, name: string) => `/api/v1/teams/${enc(team)}/workspaces/${enc(name)}`;
const vol = (team: string, name: string) => `/api/v1/teams/${enc(team)}/volumes/${enc(name)}`;
const qs = (params: Record<string, string | number | boolean | undefined>) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') s.set(k, String(v));
  const out = s.toString();
  return out ? `?${out}` : '';
};

/** Every API call the portal makes, typed from the server's schemas. */
export function endpoints(c: ApiClient) {
  return {
    approveCliLogin: (code: string) => c.request<void>('POST', '/api/v1/auth/cli-logins/approve', { code }),
    providers: () => c.request<{ items: Array<{ name: string; displayName: string; login: string }> }>('GET', '/api/v1/auth/providers'),
    login: (username: string, password: string) => c.request<{ user: UserView }>('POST', '/api/v1/auth/login', { username, password }),
    logout: () => c.request<{ endSession: string | null }>('POST', '/api/v1/auth/logout'),
    me: () => c.get<MeView>('/api/v1/me'),

    workspaces: (opts: { all?: boolean; holdsGpu?: boolean; cursor?: string; limit?: number } = {}) =>
      c.get<Page<WorkspaceView>>(`/api/v1/workspaces${qs({ all: opts.all || undefined, holdsGpu: opts.holdsGpu || undefined, cursor: opts.cursor, limit: opts.limit ?? 200 })}`),
    teamWorkspaces: (team: string) => c.get<Page<WorkspaceView>>(`/api/v1/teams/${enc(team)}/workspaces?limit=200`),
    workspace: (team: string, name: string) => c.get<WorkspaceView>(ws(team, name)),
    createWorkspace: (team: string, body: NewWorkspace) => c.request<WorkspaceView>('POST', `/api/v1/teams/${enc(team)}/workspaces`, body),
    startWorkspace: (team: string, name: string) => c.request<WorkspaceView>('POST', `${ws(team, name)}/start`),
    stopWorkspace: (team: string, name: string) => c.request<WorkspaceView>('POST', `${ws(team, name)}/stop`),
    deleteWorkspace: (team: string, name: string, purge: boolean) => c.request<void>('DELETE', `${ws(team, name)}${qs({ purge: purge || undefined })}`),
    logs: (team: string, name: string, tail = 500) => c.text(`${ws(team, name)}/logs?tail=${tail}`),

    profiles: () => c.get<{ items: ProfileView[] }>('/api/v1/profiles'),
    clusters: () => c.get<{ items: Cluster[] }>('/api/v1/clusters'),
    pools: () => c.get<{ items: PoolView[] }>('/api/v1/gpu-pools'),
    grants: (pool: string) => c.get<{ items: GrantView[] }>(`/api/v1/gpu-pools/${enc(pool)}/grants`),

    volumes: (team: string) => c.get<{ items: VolumeView[]; datasets: VolumeView[] }>(`/api/v1/teams/${enc(team)}/volumes`),
    createVolume: (team: string, body: NewVolume) => c.request<VolumeView>('POST', `/api/v1/teams/${enc(team)}/volumes`, body),
    updateVolume: (team: string, name: string, body: VolumeChange) => c.request<VolumeView>('PATCH', vol(team, name), body),
    deleteVolume: (team: string, name: string) => c.request<void>('DELETE', vol(team, name)),

    images: () => c.get<{ items: ImageView[]; importing: string[] }>('/api/v1/images'),
    importImage: (body: ImageImport) => c.request<ImageImportStarted>('POST', '/api/v1/images', body),
    // names hold '/' and ':' (registry/repo:tag): one encoded path segment
    removeImage: (name: string) => c.request<void>('DELETE', `/api/v1/images/${enc(name)}`),

    teams: (opts: { all?: boolean; cursor?: string } = {}) => c.get<Page<TeamView>>(`/api/v1/teams${qs({ all: opts.all || undefined, cursor: opts.cursor, limit: 200 })}`),
    team: (team: string) => c.get<TeamView>(`/api/v1/teams/${enc(team)}`),
    createTeam: (body: NewTeam) => c.request<TeamView>('POST', '/api/v1/teams', body),
    updateTeam: (team: string, body: { sensitive?: boolean; displayName?: string }) => c.request<TeamView>('PATCH', `/api/v1/teams/${enc(team)}`, body),
    members: (team: string) => c.get<{ items: MemberView[] }>(`/api/v1/teams/${enc(team)}/members`),
    setMember: (team: string, user: string, role: Role) => c.request<MemberView>('PUT', `/api/v1/teams/${enc(team)}/members/${enc(user)}`, { role }),
    removeMember: (team: string, user: string) => c.request<void>('DELETE', `/api/v1/teams/${enc(team)}/members/${enc(user)}`),
    usage: (team: string) => c.get<UsageView>(`/api/v1/teams/${enc(team)}/usage`),
    setQuota: (team: string, body: QuotaChange) => c.request<Quota>('PATCH', `/api/v1/teams/${enc(team)}/quota`, body),

    users: (cursor?: string) => c.get<Page<UserView>>(`/api/v1/users${qs({ cursor, limit: 200 })}`),
    createUser: (body: NewUser) => c.request<UserCreatedView>('POST', '/api/v1/users', body),
    updateUser: (user: string, body: UserChange) => c.request<UserView>('PATCH', `/api/v1/users/${enc(user)}`, body),

    tokens: () => c.get<{ items: TokenView[] }>('/api/v1/me/tokens'),
    createToken: (name: string, expiresIn?: string) => c.request<TokenCreatedView>('POST', '/api/v1/me/tokens', { name, ...(expiresIn ? { expiresIn } : {}) }),
    revokeToken: (id: string) => c.request<void>('DELETE', `/api/v1/me/tokens/${enc(id)}`),
    keys: () => c.get<{ items: SshKeyView[] }>('/api/v1/me/ssh-keys'),
    addKey: (publicKey: string, name?: string) => c.request<SshKeyView>('POST', '/api/v1/me/ssh-keys', { publicKey, ...(name ? { name } : {}) }),
    removeKey: (id: string) => c.request<void>('DELETE', `/api/v1/me/ssh-keys/${enc(id)}`),
    sshAccess: () => c.get<SshAccessView>('/api/v1/me/ssh'),

    audit: (filters: { actor?: string; action?: string; target?: string; result?: string; since?: string; until?: string; cursor?: string }) =>
      c.get<Page<AuditView>>(`/api/v1/audit${qs({ ...filters, limit: 100 })}`),
  };
}

export type Endpoints = ReturnType<typeof endpoints>;

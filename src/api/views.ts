import { isoTime } from './time.js';
import { formatBytes, formatCpu, formatDuration, quotaToSpec, type Profile, type WorkspaceResources } from '../domain/index.js';
import type { AuditEntry, GpuPool, Member, SshKeyRecord, StoredEvent, Team, TokenRecord, User, WorkspaceSummary } from '../store/index.js';
import type {
  AuditView,
  EventView,
  MemberView,
  PoolView,
  ProfileView,
  SshKeyView,
  TeamView,
  TokenView,
  UserView,
  WorkspaceView,
} from './schemas.js';

/** Records → wire shapes. Secrets (hashes) never leave through here. */
export const iso = isoTime;
const isoOrNull = (ms: number | null) => (ms === null ? null : iso(ms));

export function userView(u: User): UserView {
  return {
    id: u.id,
    username: u.username,
    email: u.email,
    displayName: u.displayName,
    admin: u.admin,
    disabled: u.disabled,
    sso: u.externalSubject !== null,
    externalSubject: u.externalSubject,
    createdAt: iso(u.createdAt),
  };
}

export function teamView(t: Team, role: TeamView['role']): TeamView {
  return {
    name: t.name,
    displayName: t.displayName,
    personal: t.personalOf !== null,
    sensitive: t.sensitive,
    quota: quotaToSpec(t.quota),
    role,
    createdAt: iso(t.createdAt),
  };
}

export function memberView(m: Member): MemberView {
  return { username: m.username, role: m.role, since: iso(m.since), group: m.grantedBy?.startsWith('group:') ? m.grantedBy.slice(6) : null };
}

export function resourcesView(r: WorkspaceResources) {
  return {
    cpu: { guarantee: formatCpu(r.cpuRequestMilli), limit: formatCpu(r.cpuLimitMilli) },
    memory: { guarantee: formatBytes(r.memoryRequestBytes), limit: formatBytes(r.memoryLimitBytes) },
    gpu: r.gpuCount > 0 && r.gpuType ? { count: r.gpuCount, type: r.gpuType } : null,
    storage: formatBytes(r.storageBytes),
  };
}

export function workspaceView(w: WorkspaceSummary): WorkspaceView {
  return {
    id: w.id,
    team: w.team,
    name: w.name,
    owner: w.owner,
    profile: w.profile,
    shared: w.shared,
    desired: w.desired,
    phase: w.phase,
    reason: w.reason,
    resources: resourcesView(w.resources),
    gpuPool: w.gpuPool,
    cluster: w.cluster || 'local',
    environment: w.spec.environment.kind,
    tier: w.spec.tier,
    image: w.spec.image ?? null,
    volumes: (w.spec.volumes ?? []).map((v) => ({ volume: `${v.team}/${v.name}`, path: v.path })),
    url: `/w/${w.team}/${w.name}/`,
    createdAt: iso(w.createdAt),
    updatedAt: iso(w.updatedAt),
    startedAt: isoOrNull(w.startedAt),
    lastActivityAt: isoOrNull(w.lastActivityAt),
  };
}

export function profileView(p: Profile, showTeams: boolean): ProfileView {
  return {
    name: p.name,
    displayName: p.displayName,
    description: p.description,
    environment: p.environment.kind,
    resources: resourcesView(p.resources),
    tier: p.tier,
    egress: p.egress,
    image: p.image ?? null,
    volumes: p.volumes,
    idleTimeout: formatDuration(p.idleTimeoutSeconds),
    agentForwarding: p.agentForwarding,
    teams: showTeams ? p.teams : null,
  };
}

export function tokenView(t: TokenRecord): TokenView {
  return { id: t.id, name: t.name, createdAt: iso(t.createdAt), expiresAt: isoOrNull(t.expiresAt), lastUsedAt: isoOrNull(t.lastUsedAt) };
}

export function sshKeyView(k: SshKeyRecord): SshKeyView {
  return { id: k.id, name: k.name, fingerprint: k.fingerprint, publicKey: k.publicKey, createdAt: iso(k.createdAt) };
}

export function poolView(p: GpuPool, used: number, owner: string | null): PoolView {
  return { name: p.name, gpuType: p.gpuType, cluster: p.cluster, size: p.size, used, owner, createdAt: iso(p.createdAt) };
}

export function auditView(e: AuditEntry): AuditView {
  return { id: e.id, at: iso(e.at), actor: e.actor, action: e.action, target: e.target, result: e.result, status: e.status, ip: e.ip, details: e.details };
}

export function eventView(e: StoredEvent, team: string): EventView {
  return { id: e.id, team, workspace: (e.data.workspace as string | undefined) ?? null, type: e.type, message: e.message, data: e.data, at: iso(e.createdAt) };
}

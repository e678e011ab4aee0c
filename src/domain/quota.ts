import { AdmissionRefused } from './errors.js';
import { formatBytes, formatCpu } from './quantity.js';
import type { EnvironmentKind, Tier, WorkspaceResources } from './workspace.js';
import { describeEgress, needsEgress, type Egress } from './specs.js';

/** A team's hard limits, in internal units. */
export interface Quota {
  cpuMilli: number;
  memoryBytes: number;
  storageBytes: number;
  workspaces: number;
  /** GPU type → count; a type not listed allows none. */
  gpus: Record<string, number>;
}

/** What a team's workspaces are charged now, in the same units. */
export type Usage = Quota;

export function emptyUsage(): Usage {
  return { cpuMilli: 0, memoryBytes: 0, storageBytes: 0, workspaces: 0, gpus: {} };
}

/** An admin-defined workspace class. */
export interface Profile {
  name: string;
  displayName: string;
  description: string;
  environment: { kind: EnvironmentKind; command?: string[]; port?: number };
  image?: string;
  resources: WorkspaceResources;
  tier: Tier;
  egress: Egress;
  /** seconds of inactivity before the culler stops a workspace; null never */
  idleTimeoutSeconds: number | null;
  /** whether SSH sessions may forward the connecting person's agent into the workspace */
  agentForwarding: boolean;
  /** team names allowed to use it; null means every team */
  teams: string[] | null;
  /** volumes every workspace of it mounts */
  volumes: Array<{ volume: string; path?: string }>;
}

/** A GPU pool as admission sees it, for one team. */
export interface PoolRoom {
  name: string;
  gpuType: string;
  /** GPUs in the pool */
  size: number;
  /** GPUs of the pool held by all teams */
  used: number;
  /** how many of the pool this team may hold (the pool's whole size for its owner) */
  grant: number;
  /** GPUs of the pool held by this team */
  teamUsed: number;
}

export interface AdmissionRequest {
  team: { name: string; sensitive: boolean; quota: Quota };
  profile: Profile;
  usage: Usage;
  /** create charges storage and a slot; create-and-start and start also charge compute */
  charge: { compute: boolean; storage: boolean };
  /** pools of the profile's GPU type that this team owns or holds a grant on */
  pools: PoolRoom[];
  /** capacity of the place it would run; absent when no runtime places workspaces */
  placement?: Placement;
}

/**
 * Where the workspace would run, as admission sees it: the machine's (or
 * cluster's) allocatable capacity for guarantees, what running workspaces
 * already guarantee, its GPUs by type, and which isolation tiers it offers.
 */
export interface Placement {
  name: string;
  allocatable: { cpuMilli: number; memoryBytes: number };
  guaranteed: { cpuMilli: number; memoryBytes: number };
  gpus: Record<string, number>;
  /** true when the tier can run here, else why not */
  tiers: Partial<Record<Tier, true | string>>;
  /** true when workspaces can be given public egress here, else why not */
  publicEgress: true | string;
}

export interface AdmissionDecision {
  /** the pool the workspace's GPUs come from, when it has any */
  gpuPool: string | null;
}

function refuseIfOver(team: string, dimension: string, requested: number, used: number, limit: number, fmt: (n: number) => string) {
  if (requested <= 0 || used + requested <= limit) return;
  const left = Math.max(0, limit - used);
  throw new AdmissionRefused(
    'quota_exceeded',
    `team ${team} ${dimension}: ${fmt(requested)} requested, ${fmt(left)} of ${fmt(limit)} left`,
    { team, dimension, requested: fmt(requested), left: fmt(left), limit: fmt(limit) },
  );
}

const count = (n: number) => String(n);

function checkPlacement(p: Placement, profile: Profile): void {
  const r = profile.resources;
  if (r.gpuCount > 0 && r.gpuType) {
    const have = p.gpus[r.gpuType] ?? 0;
    if (have < r.gpuCount) {
      throw new AdmissionRefused(
        'no_gpu',
        have === 0 ? `${p.name} has no GPU of type ${r.gpuType}; profile ${profile.name} needs ${r.gpuCount}` : `${p.name} has only ${have} GPU(s) of type ${r.gpuType}; profile ${profile.name} needs ${r.gpuCount}`,
        { gpuType: r.gpuType, requested: r.gpuCount, available: have },
      );
    }
  }
  const room = (dimension: 'cpu' | 'memory', requested: number, allocatable: number, guaranteed: number, fmt: (n: number) => string) => {
    const left = allocatable - guaranteed;
    if (requested <= left) return;
    throw new AdmissionRefused(
      'capacity_exceeded',
      `${p.name} ${dimension}: ${fmt(requested)} guaranteed requested, ${fmt(Math.max(0, left))} of ${fmt(allocatable)} left`,
      { dimension },
    );
  };
  room('cpu', r.cpuRequestMilli, p.allocatable.cpuMilli, p.guaranteed.cpuMilli, formatCpu);
  room('memory', r.memoryRequestBytes, p.allocatable.memoryBytes, p.guaranteed.memoryBytes, formatBytes);
}

/**
 * Admission per design §5, as a pure decision over a consistent snapshot the
 * store reads inside one transaction: profile allowed for the team, isolation
 * rule, quota room on every dimension, then pool grant room.
 */
export function admit(req: AdmissionRequest): AdmissionDecision {
  const { team, profile, usage, charge } = req;
  if (profile.teams !== null && !profile.teams.includes(team.name)) {
    throw new AdmissionRefused('profile_not_allowed', `profile ${profile.name} is not available to team ${team.name}`, {
      profile: profile.name,
      team: team.name,
    });
  }
  if (team.sensitive && profile.tier !== 'sandboxed') {
    throw new AdmissionRefused(
      'isolation_required',
      `team ${team.name} is sensitive and may only use sandboxed profiles; ${profile.name} is ${profile.tier}`,
      { profile: profile.name, team: team.name, tier: profile.tier },
    );
  }
  const r = profile.resources;
  if (charge.storage) {
    refuseIfOver(team.name, 'workspaces', 1, usage.workspaces, team.quota.workspaces, count);
    refuseIfOver(team.name, 'storage', r.storageBytes, usage.storageBytes, team.quota.storageBytes, formatBytes);
  }
  if (req.placement) {
    const tier = req.placement.tiers[profile.tier];
    if (tier !== true) {
      throw new AdmissionRefused('tier_unavailable', `profile ${profile.name} needs the ${profile.tier} tier: ${tier ?? `${req.placement.name} does not offer it`}`, {
        profile: profile.name,
        tier: profile.tier,
      });
    }
  }
  if (req.placement && needsEgress(profile.egress) && req.placement.publicEgress !== true) {
    const what = profile.egress === 'public' ? 'public egress' : `egress to ${describeEgress(profile.egress)}`;
    throw new AdmissionRefused('egress_unavailable', `profile ${profile.name} asks for ${what}: ${req.placement.publicEgress}`, { profile: profile.name });
  }
  if (!charge.compute) return { gpuPool: null };
  if (req.placement) checkPlacement(req.placement, profile);
  refuseIfOver(team.name, 'cpu', r.cpuLimitMilli, usage.cpuMilli, team.quota.cpuMilli, formatCpu);
  refuseIfOver(team.name, 'memory', r.memoryLimitBytes, usage.memoryBytes, team.quota.memoryBytes, formatBytes);
  if (r.gpuCount === 0 || r.gpuType === null) return { gpuPool: null };
  const type = r.gpuType;
  refuseIfOver(team.name, `gpu ${type}`, r.gpuCount, usage.gpus[type] ?? 0, team.quota.gpus[type] ?? 0, count);

  if (req.pools.length === 0) {
    throw new AdmissionRefused('no_gpu_pool', `team ${team.name} has no grant on a GPU pool of type ${type}`, {
      team: team.name,
      gpuType: type,
    });
  }
  const fits = req.pools.find((p) => p.teamUsed + r.gpuCount <= p.grant && p.used + r.gpuCount <= p.size);
  if (!fits) {
    const best = req.pools[0]!;
    const left = Math.max(0, Math.min(best.grant - best.teamUsed, best.size - best.used));
    throw new AdmissionRefused(
      'grant_exceeded',
      `team ${team.name} gpu ${type}: ${r.gpuCount} requested, ${left} free to it in pool ${best.name} (grant ${best.grant}, pool ${best.used}/${best.size} in use)`,
      { team: team.name, gpuType: type, pools: req.pools.map((p) => p.name) },
    );
  }
  return { gpuPool: fits.name };
}

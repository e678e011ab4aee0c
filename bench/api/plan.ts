import { randomBytes } from 'node:crypto';
import type { Insertable } from 'kysely';
import { DEFAULT_PROFILES } from '../../src/config/index.js';
import { profileFromSpec, type Profile, type Quota } from '../../src/domain/index.js';
import { mintToken } from '../../src/identity/index.js';
import type { MembershipsTable, TeamsTable, TokensTable, UsersTable, WorkspacesTable } from '../../src/store/index.js';
import { randomInt, seededRandom, type Random } from '../lib/random.js';

/**
 * The data set the API benchmark seeds, built once in memory and inserted
 * as is into every database, so SQLite and PostgreSQL serve identical rows
 * and the same tokens work against both.
 */

export interface Sizes {
  users: number;
  /** shared teams, beyond the personal team every user has */
  teams: number;
  workspaces: number;
  /** users given an API token; the load generator acts as them */
  drivers: number;
  /** workspaces each driver owns; more than one page of 50, so listing them returns a full page and a cursor */
  perDriver: number;
}

export const FULL_SIZES: Sizes = { users: 10_000, teams: 1_000, workspaces: 100_000, drivers: 1_000, perDriver: 55 };
export const QUICK_SIZES: Sizes = { users: 1_000, teams: 100, workspaces: 10_000, drivers: 100, perDriver: 55 };

/** Room enough that no benchmark request is refused for quota. */
export const BENCH_QUOTA: Quota = {
  cpuMilli: 1_000_000_000,
  memoryBytes: 2 ** 52,
  storageBytes: 2 ** 52,
  workspaces: 1_000_000,
  gpus: {},
};

export interface DriverWorkspace {
  team: string;
  name: string;
}

/** A user the load generator acts as. */
export interface Driver {
  username: string;
  /** bearer token, `atr_<id>_<secret>` */
  token: string;
  personalTeam: string;
  sharedTeam: string;
  workspaces: DriverWorkspace[];
}

export interface Plan {
  sizes: Sizes;
  usernames: string[];
  drivers: Driver[];
  rows: {
    users: Insertable<UsersTable>[];
    teams: Insertable<TeamsTable>[];
    memberships: Insertable<MembershipsTable>[];
    tokens: Insertable<TokensTable>[];
    workspaces: Insertable<WorkspacesTable>[];
  };
}

const DAY_MS = 86_400_000;

function newId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('base64url')}`;
}

export function usernameOf(i: number): string {
  return `user${String(i + 1).padStart(5, '0')}`;
}

function teamNameOf(j: number): string {
  return `team-${String(j + 1).padStart(4, '0')}`;
}

export function checkSizes(s: Sizes): void {
  const positive = Object.entries(s).filter(([, v]) => !Number.isInteger(v) || v < 1);
  if (positive.length > 0) throw new Error(`sizes must be positive integers: ${positive.map(([k]) => k).join(', ')}`);
  if (s.users > 99_999) throw new Error('at most 99,999 users (usernames are user00001…user99999)');
  if (s.teams > 9_999) throw new Error('at most 9,999 shared teams');
  if (s.drivers > s.users) throw new Error('more drivers than users');
  if (s.drivers * s.perDriver > s.workspaces) throw new Error(`${s.drivers} drivers × ${s.perDriver} workspaces exceed ${s.workspaces} workspaces`);
  if (s.drivers === s.users && s.drivers * s.perDriver !== s.workspaces) throw new Error('no users left to own the remaining workspaces');
}

/**
 * Observed states in a plausible mix: most workspaces stopped or never
 * started, a quarter running, a few failed or starting.
 */
function lifecycle(rnd: Random, created: number, now: number): Pick<
  Insertable<WorkspacesTable>,
  'desired' | 'phase' | 'reason' | 'generation' | 'observed_generation' | 'started_at' | 'last_activity_at' | 'updated_at'
> {
  const r = rnd();
  const lastStart = created + Math.floor(rnd() * Math.max(1, now - created));
  if (r < 0.55) {
    const active = lastStart + randomInt(rnd, 8 * 3_600_000);
    return { desired: 'stopped', phase: 'stopped', reason: 'idle', generation: 4, observed_generation: 4, started_at: lastStart, last_activity_at: active, updated_at: active };
  }
  if (r < 0.7) return { desired: 'stopped', phase: 'pending', reason: '', generation: 1, observed_generation: 0, started_at: null, last_activity_at: null, updated_at: created };
  if (r < 0.95) {
    return { desired: 'running', phase: 'running', reason: '', generation: 3, observed_generation: 3, started_at: lastStart, last_activity_at: now - randomInt(rnd, 3_600_000), updated_at: lastStart };
  }
  if (r < 0.98) {
    return { desired: 'running', phase: 'failed', reason: 'image_pull_failed', generation: 3, observed_generation: 3, started_at: null, last_activity_at: null, updated_at: lastStart };
  }
  return { desired: 'running', phase: 'starting', reason: '', generation: 3, observed_generation: 2, started_at: null, last_activity_at: null, updated_at: lastStart };
}

function workspaceRow(
  rnd: Random,
  profile: Profile,
  team: { id: string; name: string },
  owner: { id: string; username: string },
  name: string,
  created: number,
  now: number,
): Insertable<WorkspacesTable> {
  const r = profile.resources;
  // The spec exactly as the store writes it when the API creates a workspace.
  const spec = {
    environment: profile.environment,
    ...(profile.image === undefined ? {} : { image: profile.image }),
    tier: profile.tier,
    egress: profile.egress,
    idleTimeoutSeconds: profile.idleTimeoutSeconds,
  };
  return {
    id: newId('w'),
    team_id: team.id,
    team_name: team.name,
    name,
    owner_id: owner.id,
    owner_name: owner.username,
    profile: profile.name,
    shared: rnd() < 0.1 ? 1 : 0,
    cpu_request_milli: r.cpuRequestMilli,
    cpu_limit_milli: r.cpuLimitMilli,
    memory_request_bytes: r.memoryRequestBytes,
    memory_limit_bytes: r.memoryLimitBytes,
    gpu_count: r.gpuCount,
    gpu_type: r.gpuType,
    gpu_pool_id: null,
    gpu_pool_name: null,
    cluster: '',
    storage_bytes: r.storageBytes,
    spec: JSON.stringify(spec),
    purge: 0,
    created_at: created,
    deleted_at: null,
    ...lifecycle(rnd, created, now),
  };
}

/**
 * Users `user00001…`, each with a personal team they own; shared teams
 * `team-0001…` of about users/teams members each (the last one owner, the
 * rest editors; user i belongs to team i mod teams); the first `drivers`
 * users own `perDriver` workspaces each and hold a token, the others share
 * the remaining workspaces evenly. Three in five of a user's workspaces are in
 * their personal team, the rest in their shared team.
 */
export function buildPlan(sizes: Sizes, seed: number, now = Date.now()): Plan {
  checkSizes(sizes);
  const rnd = seededRandom(seed);
  // GPU profiles need pools and grants; the CPU-only ones cover the API paths measured here.
  const profiles = DEFAULT_PROFILES.map(profileFromSpec).filter((p) => p.resources.gpuCount === 0);
  const bigger = profiles.find((p) => p.name === 'standard-cpu') ?? profiles[0]!;
  const smaller = profiles.find((p) => p.name === 'small') ?? profiles[0]!;
  const quota = JSON.stringify(BENCH_QUOTA);
  const since = now - 365 * DAY_MS;
  const when = () => since + randomInt(rnd, 300 * DAY_MS);

  const rows: Plan['rows'] = { users: [], teams: [], memberships: [], tokens: [], workspaces: [] };
  const usernames: string[] = [];
  const userIds: string[] = [];
  const personalTeamIds: string[] = [];
  const sharedTeamIds: string[] = [];

  for (let j = 0; j < sizes.teams; j++) {
    const id = newId('t');
    const created = when();
    sharedTeamIds.push(id);
    rows.teams.push({ id, name: teamNameOf(j), display_name: `Team ${j + 1}`, personal_of: null, sensitive: 0, quota, created_at: created, updated_at: created });
  }

  for (let i = 0; i < sizes.users; i++) {
    const username = usernameOf(i);
    const id = newId('u');
    const teamId = newId('t');
    const created = when();
    usernames.push(username);
    userIds.push(id);
    personalTeamIds.push(teamId);
    rows.users.push({
      id,
      username,
      email: `${username}@example.com`,
      display_name: `User ${i + 1}`,
      password_hash: null,
      admin: 0,
      disabled: 0,
      external_subject: null,
      created_at: created,
      updated_at: created,
    });
    rows.teams.push({ id: teamId, name: username, display_name: username, personal_of: id, sensitive: 0, quota, created_at: created, updated_at: created });
    rows.memberships.push({ team_id: teamId, user_id: id, role: 'owner', created_at: created });
    const shared = i % sizes.teams;
    // The last member of each shared team (by index) owns it.
    const owner = i + sizes.teams >= sizes.users;
    rows.memberships.push({ team_id: sharedTeamIds[shared]!, user_id: id, role: owner ? 'owner' : 'editor', created_at: created });
  }

  const drivers: Driver[] = [];
  const rest = sizes.workspaces - sizes.drivers * sizes.perDriver;
  const others = sizes.users - sizes.drivers;
  for (let i = 0; i < sizes.users; i++) {
    const driver = i < sizes.drivers;
    const owned = driver ? sizes.perDriver : Math.floor(rest / others) + (i - sizes.drivers < rest % others ? 1 : 0);
    const shared = i % sizes.teams;
    const mine: DriverWorkspace[] = [];
    for (let k = 0; k < owned; k++) {
      const inPersonal = k % 5 < 3;
      const team = inPersonal ? usernames[i]! : teamNameOf(shared);
      const name = inPersonal ? `ws-${k + 1}` : `${usernames[i]}-${k + 1}`;
      const profile = rnd() < 0.7 ? bigger : smaller;
      const created = when();
      rows.workspaces.push(workspaceRow(rnd, profile, { id: inPersonal ? personalTeamIds[i]! : sharedTeamIds[shared]!, name: team }, { id: userIds[i]!, username: usernames[i]! }, name, created, now));
      if (driver) mine.push({ team, name });
    }
    if (driver) {
      const t = mintToken();
      rows.tokens.push({ id: t.id, user_id: userIds[i]!, name: 'bench', secret_hash: t.secretHash, created_at: now, expires_at: null, last_used_at: null, revoked_at: null });
      drivers.push({ username: usernames[i]!, token: t.token, personalTeam: usernames[i]!, sharedTeam: teamNameOf(shared), workspaces: mine });
    }
  }
  return { sizes, usernames, drivers, rows };
}

import type { Generated } from 'kysely';

/** Row types. Times are epoch milliseconds; flags are 0/1 so both databases store them alike. */
export interface UsersTable {
  id: string;
  username: string;
  email: string | null;
  display_name: string;
  password_hash: string | null;
  admin: number;
  disabled: number;
  external_subject: string | null;
  created_at: number;
  updated_at: number;
}

export interface TeamsTable {
  id: string;
  name: string;
  display_name: string;
  personal_of: string | null;
  sensitive: number;
  quota: string;
  created_at: number;
  updated_at: number;
}

export interface MembershipsTable {
  team_id: string;
  user_id: string;
  role: string;
  created_at: number;
  /** `group:<provider>:<group>` when a sign-in's groups granted it; null when granted by hand */
  granted_by?: string | null;
}

export interface CliLoginsTable {
  code: string;
  poll_hash: string;
  /** the name the CLI's token gets */
  name: string;
  /** the token's lifetime in seconds; null: no expiry */
  expires_in: number | null;
  /** who approved it, once approved */
  user_id: string | null;
  created_at: number;
}

/** Keys Atrium signs workload identity tokens with; the private half sealed under a key outside the database. */
export interface SigningKeysTable {
  kid: string;
  /** the JWS algorithm, e.g. RS256 */
  algorithm: string;
  /** the public JWK, as JSON */
  public_jwk: string;
  /** the private key (PKCS#8 DER), sealed (`v1.<iv>.<ciphertext>.<tag>`) */
  private_key: string;
  created_at: number;
  /** when it began to sign; null while it is only published, ahead of its turn */
  activated_at: number | null;
  /** when it stopped signing; null while it signs or waits to */
  retired_at: number | null;
  /** when the last token it signed expires: published until then */
  expires_at: number | null;
}

export interface OidcLoginsTable {
  state: string;
  provider: string;
  nonce: string;
  verifier: string;
  next: string;
  created_at: number;
}

export interface SessionsTable {
  id: string;
  user_id: string;
  created_at: number;
  expires_at: number;
  last_seen_at: number;
  ip: string;
  user_agent: string;
  /** the OpenID provider it was signed in with (`auth.oidc` name); null otherwise */
  provider: string | null;
}

export interface TokensTable {
  id: string;
  user_id: string;
  name: string;
  secret_hash: string;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface SshKeysTable {
  id: string;
  user_id: string;
  name: string;
  public_key: string;
  fingerprint: string;
  created_at: number;
}

export interface GpuPoolsTable {
  id: string;
  name: string;
  gpu_type: string;
  cluster: string;
  size: number;
  owner_team_id: string | null;
  created_at: number;
  updated_at: number;
}

export interface GpuGrantsTable {
  pool_id: string;
  team_id: string;
  gpu_limit: number;
  created_at: number;
}

export interface WorkspacesTable {
  id: string;
  team_id: string;
  /** the team's name, copied: team names never change */
  team_name: string;
  name: string;
  owner_id: string;
  /** the owner's username, copied: usernames never change */
  owner_name: string;
  profile: string;
  shared: number;
  desired: string;
  phase: string;
  reason: string;
  cpu_request_milli: number;
  cpu_limit_milli: number;
  memory_request_bytes: number;
  memory_limit_bytes: number;
  gpu_count: number;
  gpu_type: string | null;
  gpu_pool_id: string | null;
  /** the pool's name, copied with its id: pool names never change */
  gpu_pool_name: string | null;
  cluster: string;
  storage_bytes: number;
  /** JSON: environment, image, tier, egress, idle timeout, copied from the profile */
  spec: string;
  /** set with desired 'deleted' when the home is to be deleted too */
  purge: number;
  /** bumped on every change of desired state, so the reconciler can tell new intent from old */
  generation: number;
  observed_generation: number;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  last_activity_at: number | null;
  deleted_at: number | null;
}

export interface EventsTable {
  id: Generated<number>;
  team_id: string;
  workspace_id: string | null;
  type: string;
  message: string;
  data: string;
  created_at: number;
}

export interface AuditTable {
  id: Generated<number>;
  at: number;
  actor_id: string | null;
  actor: string;
  action: string;
  target: string;
  result: string;
  status: number;
  ip: string;
  details: string;
}

export interface HostUidsTable {
  user_id: string;
  uid: number;
}

export interface VolumesTable {
  id: string;
  team_id: string;
  name: string;
  size_bytes: number;
  /** 'none', or 'viewers': read-only in workspaces whose owner is a viewer of the team */
  read_only_for: string;
  /** JSON: ids of other teams the volume is published to, read-only (a dataset) */
  shared_with: string;
  created_at: number;
  updated_at: number;
}

/** The host group of a team's shared volumes (local runtime), allocated once and never reused. */
export interface TeamGidsTable {
  team_id: string;
  gid: number;
}

export interface Database {
  users: UsersTable;
  teams: TeamsTable;
  memberships: MembershipsTable;
  sessions: SessionsTable;
  tokens: TokensTable;
  ssh_keys: SshKeysTable;
  gpu_pools: GpuPoolsTable;
  gpu_grants: GpuGrantsTable;
  workspaces: WorkspacesTable;
  events: EventsTable;
  audit: AuditTable;
  host_uids: HostUidsTable;
  volumes: VolumesTable;
  oidc_logins: OidcLoginsTable;
  cli_logins: CliLoginsTable;
  signing_keys: SigningKeysTable;
  team_gids: TeamGidsTable;
}

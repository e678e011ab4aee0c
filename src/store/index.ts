import { EventEmitter } from 'node:events';
import { createAuditRepo, createEventsRepo } from './audit.js';
import type { StoreContext } from './common.js';
import { createCredentialsRepo } from './credentials.js';
import { migrate, openDatabase, type DatabaseTarget } from './db.js';
import { createHostUids } from './host-uids.js';
import { createAccessNotices } from './notices.js';
import { createPoolsRepo } from './pools.js';
import { createTeamsRepo } from './teams.js';
import { createUsersRepo } from './users.js';
import { createVolumesRepo } from './volumes.js';
import { createSsoRepo } from './sso.js';
import { createSigningKeysRepo } from './signing-keys.js';
import { createWorkspaceStates } from './workspace-states.js';
import { createWorkspacesRepo } from './workspaces.js';

export type { DatabaseTarget, Dialect } from './db.js';
export type { Page, StoredEvent, NewEvent, Tx, AuditScope } from './common.js';
export { auditScope } from './common.js';
export type { User, NewUser } from './users.js';
export type { Team, Member } from './teams.js';
export type { Workspace, WorkspaceSummary, WorkspaceSettings } from './workspace-rows.js';
export type { WorkspaceStates, PhaseReport, AccessTarget } from './workspace-states.js';
export type { NewWorkspace } from './workspaces.js';
export type { Machine } from './admission.js';
export type { Volume, ResolvedMount } from './volumes.js';
export type { PendingLogin, GroupSync } from './sso.js';
export type { SigningKeyRecord, NewSigningKey } from './signing-keys.js';
export { TEAM_GID_BASE } from './volumes.js';
export type { GpuPool, GpuGrant } from './pools.js';
export type { SessionRecord, TokenRecord, SshKeyRecord } from './credentials.js';
export type { AuditEntry, AuditFilter } from './audit.js';

/**
 * Opens the database, brings its schema up to date, and returns one
 * repository per aggregate plus the workspace-state interface for the
 * reconciler and runtimes.
 */
export async function createStore(target: DatabaseTarget, opts: { now?: () => number; migrate?: boolean; listen?: boolean } = {}) {
  const { db, dialect, raw } = openDatabase(target);
  // a second connection of a running server (the list reader) finds the schema up to date
  if (opts.migrate !== false) await migrate(db, dialect);
  const bus = new EventEmitter();
  bus.setMaxListeners(0);
  // several control planes on one PostgreSQL database hear each other's access changes
  const notices = target.kind === 'postgres' && opts.listen !== false ? createAccessNotices(target.url, bus, (text, values) => raw(text, values)) : undefined;
  const ctx: StoreContext = { db, dialect, bus, now: opts.now ?? Date.now, raw, ...(notices ? { announceAccess: () => notices.announce() } : {}) };
  return {
    dialect,
    users: createUsersRepo(ctx),
    teams: createTeamsRepo(ctx),
    workspaces: createWorkspacesRepo(ctx),
    pools: createPoolsRepo(ctx),
    credentials: createCredentialsRepo(ctx),
    audit: createAuditRepo(ctx),
    events: createEventsRepo(ctx),
    workspaceStates: createWorkspaceStates(ctx),
    hostUids: createHostUids(ctx),
    volumes: createVolumesRepo(ctx),
    sso: createSsoRepo(ctx),
    signingKeys: createSigningKeysRepo(ctx),
    /** Whether access changes other control planes make reach this one as they happen (PostgreSQL, listening): caches may then keep identities long. */
    accessNoticesLive: (): boolean => notices?.live() ?? false,
    /** Calls `listener` whenever users, tokens or memberships change (here, or announced by another control plane); returns an unsubscribe function. */
    onAccessChange(listener: () => void): () => void {
      bus.on('access', listener);
      return () => bus.off('access', listener);
    },
    /** Calls `listener` whenever a team is made, changed or deleted, or its members change; returns an unsubscribe function. */
    onTeamChange(listener: () => void): () => void {
      bus.on('teams', listener);
      return () => bus.off('teams', listener);
    },
    /** Calls `listener` whenever a volume is made, changed or deleted; returns an unsubscribe function. */
    onVolumeChange(listener: () => void): () => void {
      bus.on('volumes', listener);
      return () => bus.off('volumes', listener);
    },
    /** Raw database access for maintenance and tests (checksums); application code uses the repositories. */
    db,
    close: async () => {
      await notices?.close();
      await db.destroy();
    },
  };
}

export type Store = Awaited<ReturnType<typeof createStore>>;

/** For maintenance and schema tests: the database without the repositories, and the migrations that build it. */
export { openDatabase } from './db.js';
export { migrations } from './migrations.js';
/** Row shapes, for tools that seed a database in bulk (bench/). */
export type { MembershipsTable, TeamsTable, TokensTable, UsersTable, WorkspacesTable } from './schema.js';

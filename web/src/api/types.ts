/**
 * The API's types, taken from the server's own schemas (type-only: nothing
 * of the server is bundled), so the portal cannot drift from the API.
 */
import type { Static } from '@sinclair/typebox';
import type {
  AuditView,
  GrantView,
  MemberView,
  MeView,
  NewTeamBody,
  NewUserBody,
  NewWorkspaceBody,
  PoolView,
  ProfileView,
  QuotaPatch,
  SshAccessView,
  SshKeyView,
  TeamView,
  TokenCreated,
  TokenView,
  UsageView,
  UserCreated,
  UserPatch,
  UserView,
  WorkspaceView,
  EventView,
  ClusterView,
} from '../../../src/api/contract.ts';

export type { AuditView, GrantView, MemberView, MeView, PoolView, ProfileView, SshAccessView, SshKeyView, TeamView, TokenView, UsageView, UserView, WorkspaceView, EventView };
export type Cluster = Static<typeof ClusterView>;
export type NewWorkspace = Static<typeof NewWorkspaceBody>;
export type NewUser = Static<typeof NewUserBody>;
export type NewTeam = Static<typeof NewTeamBody>;
export type UserChange = Static<typeof UserPatch>;
export type QuotaChange = Static<typeof QuotaPatch>;
export type TokenCreatedView = Static<typeof TokenCreated>;
export type UserCreatedView = Static<typeof UserCreated>;
export type Quota = UsageView['quota'];
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}
export type Phase = WorkspaceView['phase'];
export type Role = MemberView['role'];

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
  ImageImporting,
  ImageView as ImageViewSchema,
  ImportImageBody,
  NewVolumeBody,
  VolumePatch,
  VolumeView as VolumeViewSchema,
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
export type ImageView = Static<typeof ImageViewSchema>;
export type ImageImport = Static<typeof ImportImageBody>;
export type ImageImportStarted = Static<typeof ImageImporting>;
/** One step of an image import, as `GET /api/v1/images/events` sends it (`event: image`). */
export interface ImageEvent {
  name: string;
  state: 'importing' | 'unpacking' | 'ready' | 'failed' | 'removed';
  message: string;
}
export type VolumeView = Static<typeof VolumeViewSchema>;
export type NewVolume = Static<typeof NewVolumeBody>;
export type VolumeChange = Static<typeof VolumePatch>;
export type VolumeMount = NonNullable<NewWorkspace['volumes']>[number];
export type ReadOnlyFor = VolumeView['readOnlyFor'];
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}
export type Phase = WorkspaceView['phase'];
export type Role = MemberView['role'];

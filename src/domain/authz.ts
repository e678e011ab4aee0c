import { atLeast, type Role } from './roles.js';

/** Who is asking. A user subject carries their role in every team they belong to. */
export type Subject =
  | { kind: 'anonymous' }
  | {
      kind: 'user';
      id: string;
      username: string;
      admin: boolean;
      /** team id → role */
      roles: ReadonlyMap<string, Role>;
    };

/** What is being acted on. Later parts (clusters, pools, SSH) add kinds here, not new checks elsewhere. */
export type Resource =
  | { kind: 'platform' }
  | { kind: 'user'; id: string }
  | { kind: 'team'; id: string }
  | { kind: 'workspace'; teamId: string; ownerId: string; shared: boolean };

export const ACTIONS = [
  /** read the catalogue: profiles, clusters, GPU pools */
  'platform.read',
  /** administer: users, teams, quotas, pools, grants, audit; render a cluster's objects (they can hold every workspace's keys) */
  'platform.admin',
  'user.read',
  /** one's own password, SSH keys and tokens */
  'user.self',
  'team.read',
  'team.members.update',
  'workspace.create',
  /** create a team volume, grow it, change who reads it */
  'volume.manage',
  /** delete a team volume and its data */
  'volume.delete',
  'workspace.read',
  /** start, stop, change, delete */
  'workspace.operate',
  /** open the app or a shell: run code as the workspace user */
  'workspace.connect',
] as const;
export type Action = (typeof ACTIONS)[number];

function roleIn(subject: Subject, teamId: string): Role | undefined {
  return subject.kind === 'user' ? subject.roles.get(teamId) : undefined;
}

/**
 * The one authorization decision. Platform admin > team owner > editor > viewer.
 * Connecting to a workspace runs code as its user, so it belongs to the
 * workspace's owner (and, when shared, the team's editors and owners) and is
 * not implied by any admin or owner role: an admin may stop or delete a
 * workspace but not act inside someone else's.
 *
 * @example can(subject, 'workspace.operate', { kind: 'workspace', teamId, ownerId, shared: false })
 */
export function can(subject: Subject, action: Action, resource: Resource): boolean {
  if (subject.kind === 'anonymous') return false;
  if (action === 'workspace.connect') {
    if (resource.kind !== 'workspace') return false;
    const role = roleIn(subject, resource.teamId);
    if (resource.ownerId === subject.id) return atLeast(role, 'editor') || (subject.admin && role !== undefined);
    return resource.shared && atLeast(role, 'editor');
  }
  if (subject.admin) return true;
  switch (action) {
    case 'platform.read':
      return true;
    case 'platform.admin':
      return false;
    case 'user.read':
    case 'user.self':
      return resource.kind === 'user' && resource.id === subject.id;
    case 'team.read':
    case 'workspace.read':
      return (resource.kind === 'team' || resource.kind === 'workspace') &&
        roleIn(subject, resource.kind === 'team' ? resource.id : resource.teamId) !== undefined;
    case 'team.members.update':
      return resource.kind === 'team' && atLeast(roleIn(subject, resource.id), 'owner');
    case 'workspace.create':
    case 'volume.manage':
      return resource.kind === 'team' && atLeast(roleIn(subject, resource.id), 'editor');
    case 'volume.delete':
      return resource.kind === 'team' && atLeast(roleIn(subject, resource.id), 'owner');
    case 'workspace.operate': {
      if (resource.kind !== 'workspace') return false;
      const role = roleIn(subject, resource.teamId);
      return atLeast(role, 'owner') || (resource.ownerId === subject.id && atLeast(role, 'editor'));
    }
  }
}

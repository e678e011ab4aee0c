/**
 * Every route's action: the name its audit rows carry and the key of the
 * permission table the authorization walk checks. A route naming anything
 * else does not compile.
 */
export const ROUTE_ACTIONS = [
  'health.read', 'openapi.read',
  'auth.login', 'auth.logout', 'auth.providers', 'auth.sso', 'auth.cli.start', 'auth.cli.poll', 'auth.cli.approve',
  'me.read', 'me.password', 'token.list', 'token.create', 'token.revoke', 'sshkey.list', 'sshkey.add', 'sshkey.remove', 'ssh.read',
  'user.list', 'user.read', 'user.create', 'user.update',
  'team.list', 'team.read', 'team.create', 'team.update', 'team.delete', 'team.events',
  'member.list', 'member.set', 'member.remove', 'quota.read', 'quota.update', 'usage.read',
  'workspace.list', 'workspace.read', 'workspace.create', 'workspace.update', 'workspace.start', 'workspace.stop', 'workspace.delete', 'workspace.logs', 'workspace.events', 'workspace.ssh',
  'events.read',
  'profile.list', 'profile.read', 'cluster.list', 'cluster.render',
  'gpupool.list', 'gpupool.read', 'gpupool.create', 'gpupool.update', 'gpupool.delete', 'grant.list', 'grant.set', 'grant.remove',
  'volume.list', 'volume.read', 'volume.create', 'volume.update', 'volume.delete',
  'image.list', 'image.read', 'image.import', 'image.delete', 'image.events',
  'identity.discovery', 'identity.jwks', 'identity.read', 'identity.rotate',
  'audit.list',
] as const;

export type RouteAction = (typeof ROUTE_ACTIONS)[number];

import type { Profile } from '../domain/index.js';
import type { Workspace } from '../store/index.js';

/**
 * The profile a restart is admitted with: the resources the workspace was
 * created with, under the profile's current team list; a profile since
 * removed from the config no longer restricts teams. The API's start and
 * the SSH gateway's start-on-connect both admit with it.
 */
export function restartProfile(ws: Workspace, profiles: ReadonlyMap<string, Profile>): Profile {
  const current = profiles.get(ws.profile);
  return {
    name: ws.profile,
    displayName: current?.displayName ?? ws.profile,
    description: '',
    environment: ws.spec.environment,
    resources: ws.resources,
    tier: ws.spec.tier,
    egress: ws.spec.egress,
    idleTimeoutSeconds: ws.spec.idleTimeoutSeconds,
    agentForwarding: ws.spec.agentForwarding ?? false,
    teams: current?.teams ?? null,
    // its mounts were decided when it was made (WorkspaceSettings.volumes)
    volumes: [],
  };
}

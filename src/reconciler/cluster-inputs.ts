import type { TeamInput, TeamWithWorkspaces, WorkspaceSpec } from '../runtime/index.js';
import type { Store, Team, Workspace } from '../store/index.js';
import { authorizedKeysOf } from './ssh-access.js';
import { volumesOf, workspaceSpec, type WorkspaceKeys } from './spec.js';

/**
 * What a cluster is given of teams and workspaces, read from the store: a
 * team with its quota and members, a workspace's spec with who may log in.
 * The Kubernetes runtime looks them up as it applies; `atrium render
 * kubernetes` reads every team's at once, so both render the same objects.
 */
export function createClusterInputs(store: Store, keys: WorkspaceKeys) {
  const authorizedKeys = authorizedKeysOf(store, keys);

  async function teamInput(team: Team): Promise<TeamInput> {
    const members = await store.teams.members(team.id);
    return { name: team.name, sensitive: team.sensitive, quota: team.quota, members: members.map((m) => ({ username: m.username, role: m.role })) };
  }

  async function specOf(ws: Workspace): Promise<WorkspaceSpec> {
    return workspaceSpec(ws, await authorizedKeys(ws), keys, await volumesOf(store, ws));
  }

  async function team(name: string): Promise<TeamInput | undefined> {
    const found = await store.teams.byName(name);
    return found && teamInput(found);
  }

  /** A workspace's spec by id, deleted or not (removing one needs its names). */
  async function spec(id: string): Promise<WorkspaceSpec | undefined> {
    const ws = await store.workspaceStates.get(id);
    return ws && specOf(ws);
  }

  /**
   * The teams (every one, by name, or those given) with their workspaces as
   * a cluster should hold them: deleted workspaces are left out; one runs
   * when it is asked to run and has not failed (a failed start leaves it
   * stopped until it is started again), and is stopped otherwise.
   */
  async function desired(teams?: Team[], here: (ws: Workspace) => boolean = () => true): Promise<TeamWithWorkspaces[]> {
    const out: TeamWithWorkspaces[] = [];
    for (const t of teams ?? (await allTeams(store))) {
      const workspaces = (await store.workspaces.ofTeam(t.id)).filter(here);
      out.push({
        team: await teamInput(t),
        workspaces: await Promise.all(workspaces.map(async (ws) => ({ spec: await specOf(ws), running: ws.desired === 'running' && ws.phase !== 'failed' }))),
        volumes: (await store.volumes.ofTeam(t.id)).map((v) => ({ name: v.name, sizeBytes: v.sizeBytes })),
      });
    }
    return out;
  }

  return { team, spec, desired };
}

export type ClusterInputs = ReturnType<typeof createClusterInputs>;

async function allTeams(store: Store): Promise<Team[]> {
  const teams: Team[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.teams.list({ limit: 500, ...(cursor === undefined ? {} : { cursor }) });
    teams.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return teams;
}

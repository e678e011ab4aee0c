import type { WorkspaceSpec } from '../runtime/index.js';
import type { Store, Workspace } from '../store/index.js';

/** The per-workspace SSH keys the control plane holds (`loadSshKeys` in identity). */
export interface WorkspaceKeys {
  /** the workspace sshd's host key (OpenSSH private key) */
  hostPrivateKey(workspaceId: string): string;
  /** the public key line the gateway logs in to it with */
  gatewayPublicKey(workspaceId: string): string;
}

/** The volumes a workspace mounts as they stand now (sizes, read-only or not), and its team's volume group. */
export async function volumesOf(store: Store, ws: Workspace): Promise<Pick<WorkspaceSpec, 'volumes' | 'teamGid'>> {
  const mounts = await store.volumes.forStart({ teamId: ws.teamId, ownerId: ws.ownerId, mounts: ws.spec.volumes ?? [] });
  if (mounts.length === 0) return { volumes: [] };
  return {
    volumes: mounts.map((m) => ({ id: m.volumeId, team: m.team, name: m.name, path: m.path, readOnly: m.readOnly, sizeBytes: m.sizeBytes })),
    teamGid: await store.volumes.teamGid(ws.teamId),
  };
}

/** What a runtime is given to run a workspace, from its record, who may log in to it and what it mounts. */
export function workspaceSpec(ws: Workspace, authorizedKeys: string[], sshKeys: WorkspaceKeys, volumes: Pick<WorkspaceSpec, 'volumes' | 'teamGid'> = { volumes: [] }): WorkspaceSpec {
  return {
    id: ws.id,
    team: ws.team,
    name: ws.name,
    ...(ws.cluster ? { cluster: ws.cluster } : {}),
    owner: { id: ws.ownerId, username: ws.owner },
    environment: ws.spec.environment,
    ...(ws.spec.image === undefined ? {} : { image: ws.spec.image }),
    tier: ws.spec.tier,
    egress: ws.spec.egress,
    cpu: { requestMilli: ws.resources.cpuRequestMilli, limitMilli: ws.resources.cpuLimitMilli },
    memory: { requestBytes: ws.resources.memoryRequestBytes, limitBytes: ws.resources.memoryLimitBytes },
    gpu: { count: ws.resources.gpuCount, type: ws.resources.gpuType },
    storageBytes: ws.resources.storageBytes,
    basePath: `/w/${ws.team}/${ws.name}/`,
    ssh: { hostKey: sshKeys.hostPrivateKey(ws.id), authorizedKeys },
    agentForwarding: ws.spec.agentForwarding ?? false,
    ...volumes,
  };
}

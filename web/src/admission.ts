import { AdmissionRefused } from '../../src/domain/index.ts';
import { parseBytes, parseCpu } from '../../src/domain/index.ts';
import { admit, type Quota } from '../../src/domain/index.ts';
import type { ProfileView, TeamView, UsageView } from './api/types.ts';

function quota(q: UsageView['quota']): Quota {
  return { cpuMilli: parseCpu(q.cpu) ?? 0, memoryBytes: parseBytes(q.memory) ?? 0, storageBytes: parseBytes(q.storage) ?? 0, workspaces: q.workspaces, gpus: q.gpu };
}

/**
 * Whether launching `profile` in `team` now would be admitted, by the
 * server's own admission rules (`admit()` from the domain), against the
 * team's quota and current usage: undefined when it fits, else the reason the
 * server would give. GPU pool room is left to the server (grants are not
 * visible to everyone), so a GPU profile that fits the quota is offered and
 * the launch reports a full pool.
 */
export function launchRefusal(profile: ProfileView, team: TeamView, usage: UsageView): string | undefined {
  const r = profile.resources;
  try {
    admit({
      team: { name: team.name, sensitive: team.sensitive, quota: quota(usage.quota) },
      profile: {
        name: profile.name,
        displayName: profile.displayName,
        description: profile.description,
        environment: { kind: profile.environment },
        resources: {
          cpuRequestMilli: parseCpu(r.cpu.guarantee) ?? 0,
          cpuLimitMilli: parseCpu(r.cpu.limit) ?? 0,
          memoryRequestBytes: parseBytes(r.memory.guarantee) ?? 0,
          memoryLimitBytes: parseBytes(r.memory.limit) ?? 0,
          gpuCount: r.gpu?.count ?? 0,
          gpuType: r.gpu?.type ?? null,
          storageBytes: parseBytes(r.storage) ?? 0,
        },
        tier: profile.tier,
        egress: profile.egress,
        idleTimeoutSeconds: null,
        agentForwarding: profile.agentForwarding,
        teams: profile.teams,
        volumes: profile.volumes,
      },
      usage: quota(usage.usage),
      charge: { compute: true, storage: true },
      pools: r.gpu ? [{ name: '', gpuType: r.gpu.type, grant: Infinity, teamUsed: 0, used: 0, size: Infinity }] : [],
    });
    return undefined;
  } catch (err) {
    if (err instanceof AdmissionRefused) return err.message;
    throw err;
  }
}

import type { Capacity, Observation, Runtime } from '../types.js';
import type { KubernetesRuntime } from './index.js';

/**
 * Several clusters as one runtime: a workspace is started on the cluster its
 * spec names (placement chose it, for its life) and found again by whichever
 * cluster's watches hold its objects, or else by the cluster the control
 * plane recorded for it. An unreachable cluster affects only its own
 * workspaces (they show `unknown`).
 */
/** Several clusters as one runtime, and each cluster's own. */
export type ClusterSet = Runtime & { clusters: KubernetesRuntime[] };

export function createClusterSet(clusters: KubernetesRuntime[], clusterOf: (workspaceId: string) => Promise<string | undefined>): ClusterSet {
  const byName = new Map(clusters.map((c) => [c.name, c]));

  function named(name: string | undefined): KubernetesRuntime {
    const c = name === undefined ? (clusters.length === 1 ? clusters[0] : undefined) : byName.get(name);
    if (!c) throw new Error(name === undefined ? 'the workspace has no cluster' : `cluster ${name} is not configured`);
    return c;
  }

  async function of(id: string): Promise<KubernetesRuntime> {
    return clusters.find((c) => c.holds(id)) ?? named(await clusterOf(id));
  }

  return {
    name: 'kubernetes',
    clusters,
    ensureTenant: async (team) => {
      for (const c of clusters) await c.ensureTenant(team);
    },
    start: (spec) => named(spec.cluster).start(spec),
    syncVolumes: async (volumes) => {
      // each cluster holds every team's volumes: a workspace of the team may be placed on any of them
      const results = await Promise.allSettled(clusters.map((c) => c.syncVolumes!(volumes)));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
    stop: async (id) => (await of(id)).stop(id),
    remove: async (id, o) => {
      // a crash between placement and the first apply can leave nothing anywhere: then there is nothing to remove
      const c = clusters.find((r) => r.holds(id)) ?? byName.get((await clusterOf(id)) ?? '');
      await c?.remove(id, o);
    },
    inventory: async () => (await Promise.all(clusters.map((c) => c.inventory()))).flat(),
    async *observe(signal) {
      const queue: Observation[] = [];
      let wake: (() => void) | undefined;
      const pumps = clusters.map(async (c) => {
        for await (const o of c.observe(signal)) {
          queue.push(o);
          wake?.();
        }
      });
      void Promise.allSettled(pumps).then(() => wake?.());
      signal.addEventListener('abort', () => wake?.());
      while (!signal.aborted) {
        if (queue.length === 0) await new Promise<void>((r) => (wake = r));
        wake = undefined;
        yield* queue.splice(0);
      }
    },
    waitReady: async (id, o) => (await of(id)).waitReady(id, o),
    endpoint: async (id, port) => (await of(id)).endpoint(id, port),
    async *logs(id, o) {
      yield* (await of(id)).logs(id, o);
    },
    activity: async (id) => (await of(id)).activity(id),
    authorize: async (id, lines) => {
      const c = clusters.find((r) => r.holds(id));
      await c?.authorize(id, lines);
    },
    notify: async (id, message) => (await of(id)).notify(id, message),
    async capacity(): Promise<Capacity> {
      const all = await Promise.all(clusters.map((c) => c.capacity()));
      return {
        cpuMilli: all.reduce((a, c) => a + c.cpuMilli, 0),
        memoryBytes: all.reduce((a, c) => a + c.memoryBytes, 0),
        gpus: all.flatMap((c) => c.gpus),
        allocated: { cpuMilli: all.reduce((a, c) => a + c.allocated.cpuMilli, 0), memoryBytes: all.reduce((a, c) => a + c.allocated.memoryBytes, 0) },
        tiers: { standard: true, sandboxed: true },
        publicEgress: true,
      };
    },
    close: async () => {
      for (const c of clusters) await c.close();
    },
  };
}

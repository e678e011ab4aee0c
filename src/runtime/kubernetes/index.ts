import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { Duplex, PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { PortForward, type CoreV1Event, type V1Namespace, type V1Node, type V1Pod, type V1StatefulSet } from '@kubernetes/client-node';
import { parseBytes, parseCpu } from '../../domain/index.js';
import type { Activity, Capacity, Endpoint, Gpu, LogOptions, Observation, Runtime, VolumeState, WorkspaceSpec } from '../types.js';
import { KubeError, pathOf, type KubeClient } from './client.js';
import { createInformer } from './informer.js';
import { workspacePhase } from './phase.js';
import {
  ANNOTATION_WORKSPACE_ID, datasetVolumeName, jupyterToken, LABEL_COMPONENT, LABEL_MANAGED_BY, LABEL_TEAM, namespaceOf, renderAccessSecret, renderClusterScope, renderDatasetClaim,
  renderStatefulSet, renderTeam, renderVolumeClaim, renderWorkspace, volumeClaimName, WORKSPACE_PORTS, workspaceNames, type KubeObject, type RenderSettings, type TeamInput,
} from './render/index.js';

export { createKubeClient, KubeError, loadKubeConfig, type KubeClient } from './client.js';
export { renderSettings, DEFAULT_WRITER, type ClusterConfig, type KubernetesConfig } from './settings.js';
export * as render from './render/index.js';
export { createClusterSet, type ClusterSet } from './clusters.js';

const WORKSPACE_SELECTOR = encodeURIComponent('app.kubernetes.io/managed-by=atrium,app.kubernetes.io/component=workspace');

export interface KubernetesRuntimeOptions {
  /** the cluster's name in the config */
  cluster: string;
  client: KubeClient;
  /** render settings for this cluster; `writer` is replaced by the identity the cluster reports for Atrium */
  settings: RenderSettings;
  /** how the proxy and gateway reach pods */
  endpoint: 'direct' | 'apiserver';
  /** how long the cluster may take to make a pod and start its container, waiting for a node with room aside */
  startTimeoutMs: number;
  /** root-only directory for the Unix sockets that front port-forwards */
  socketDir: string;
  /** the control plane's view of teams and workspaces, for objects that need more than a workspace id */
  lookup: {
    team(name: string): Promise<TeamInput | undefined>;
    spec(workspaceId: string): Promise<WorkspaceSpec | undefined>;
  };
  log: { warn(obj: unknown, msg?: string): void; info(obj: unknown, msg?: string): void };
}

export interface KubernetesRuntime extends Runtime {
  /** the identity Atrium writes with on this cluster */
  readonly writer: string;
  /** whether the watches see objects of the workspace on this cluster */
  holds(id: string): boolean;
  /** API requests sent to this cluster so far */
  readonly requests: number;
  /** full lists the watches have taken: one each at start, and one after every resume the API server refused as expired */
  readonly relists: number;
  /** why the cluster cannot be reached now, or null */
  readonly unreachable: string | null;
  waitReady: NonNullable<Runtime['waitReady']>;
  /** Applies every object with the API server's dry run: nothing is stored. */
  dryRun(objects: KubeObject[]): Promise<void>;
  /**
   * Brings every team namespace Atrium made on the cluster in line with the
   * control plane: a team's changed quota, members or sensitivity are
   * applied, and the namespace of a deleted team is deleted (once no
   * workspace of it is left there).
   */
  syncTenants(): Promise<{ updated: number; deleted: number }>;
  close(): Promise<void>;
}

function digest(o: unknown): string {
  return createHash('sha256').update(JSON.stringify(o)).digest('base64url');
}

function idOf(o: { metadata?: { annotations?: Record<string, string> } }): string | undefined {
  return o.metadata?.annotations?.[ANNOTATION_WORKSPACE_ID];
}

/**
 * The Kubernetes runtime for one cluster (design §6): renders objects,
 * applies them with server-side apply as the field manager `atrium`, and
 * drives phases from watches of pods, StatefulSets, pod events and nodes, so
 * an idle workspace costs the API server nothing.
 */
export async function createKubernetesRuntime(opts: KubernetesRuntimeOptions): Promise<KubernetesRuntime> {
  const { client, log } = opts;
  const review = await client.post<{ status?: { userInfo?: { username?: string } } }>('/apis/authentication.k8s.io/v1/selfsubjectreviews', {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'SelfSubjectReview',
  });
  const writer = review.status?.userInfo?.username ?? opts.settings.writer;
  const settings: RenderSettings = { ...opts.settings, writer };
  await mkdir(opts.socketDir, { recursive: true, mode: 0o700 });

  /** what was last applied, by object path: an unchanged object is not sent again */
  const applied = new Map<string, string>();
  const specs = new Map<string, WorkspaceSpec>();
  const changed = new Set<(id: string) => void>();
  const lastPhase = new Map<string, string>();
  const eventsOf = new Map<string, CoreV1Event[]>();
  const eventCount = new Map<string, number>();
  let unreachable: string | null = null;

  async function apply(objects: KubeObject[]): Promise<void> {
    for (const o of objects) {
      const path = pathOf(o);
      const d = digest(o);
      if (applied.get(path) === d) continue;
      try {
        await client.apply(o);
      } catch (err) {
        applied.delete(path);
        if (err instanceof KubeError && err.status === 409) {
          throw new KubeError(409, 'Conflict', `${o.kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name} was changed by another field manager; Atrium does not overwrite it: ${err.message}`, err.details);
        }
        throw err;
      }
      applied.set(path, d);
    }
  }

  const notify = (id: string | undefined) => {
    if (id) for (const fn of changed) fn(id);
  };
  const pods = createInformer<V1Pod>(client, '/api/v1/pods', `labelSelector=${WORKSPACE_SELECTOR}`, {
    added: (p) => notify(idOf(p)),
    modified: (p) => notify(idOf(p)),
    deleted: (p) => notify(idOf(p)),
    unreachable: (reason) => {
      unreachable = reason;
      // every workspace of this cluster is now unknown, or back to what the watches see
      for (const id of knownIds()) notify(id);
    },
  }, { index: idOf });
  const sets = createInformer<V1StatefulSet>(client, '/apis/apps/v1/statefulsets', `labelSelector=${WORKSPACE_SELECTOR}`, {
    added: (s) => notify(idOf(s)),
    modified: (s) => notify(idOf(s)),
    deleted: (s) => notify(idOf(s)),
  }, { index: idOf });
  const podEvent = (e: CoreV1Event) => {
    const name = e.involvedObject?.name ?? '';
    const ns = e.involvedObject?.namespace ?? '';
    if (!ns.startsWith(settings.namespacePrefix)) return;
    const pod = pods.get(ns, name);
    const id = pod && idOf(pod);
    if (!id) return;
    const list = eventsOf.get(id) ?? [];
    list.push(e);
    eventsOf.set(id, list.slice(-20));
    eventCount.set(id, (eventCount.get(id) ?? 0) + 1);
    notify(id);
  };
  const events = createInformer<CoreV1Event>(client, '/api/v1/events', `fieldSelector=${encodeURIComponent('involvedObject.kind=Pod')}`, { added: podEvent, modified: podEvent });
  const nodes = createInformer<V1Node>(client, '/api/v1/nodes', '', {});
  await Promise.all([pods.ready, sets.ready, events.ready, nodes.ready]);
  await apply(renderClusterScope(settings));
  /** namespace/name of every workspace's policy for allowed ranges on the cluster: read once, then kept as they are written */
  const egressPolicies = new Set<string>(
    (await client.get<{ items: KubeObject[] }>(`/apis/networking.k8s.io/v1/networkpolicies?labelSelector=${WORKSPACE_SELECTOR}`)).items.map((o) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`),
  );

  function setOf(id: string): V1StatefulSet | undefined {
    return sets.byIndex(id);
  }
  function podOf(id: string): V1Pod | undefined {
    return pods.byIndex(id);
  }
  function phaseOf(id: string) {
    return workspacePhase(setOf(id), podOf(id));
  }

  async function specOf(id: string): Promise<WorkspaceSpec> {
    const spec = specs.get(id) ?? (await opts.lookup.spec(id));
    if (!spec) throw new Error(`workspace ${id} is not known to the control plane`);
    return spec;
  }

  const teamDigests = new Map<string, string>();
  /** per team, the tenant pass under way and the one queued behind it */
  const tenantPasses = new Map<string, { running: Promise<void>; queued?: Promise<void> }>();
  /**
   * Applies the team's tenant objects when they changed. A call while a pass
   * runs queues one more pass (it may carry a change the running one read too
   * early), and every call meanwhile joins that queued pass: a burst of starts
   * in one team costs one or two passes, not one each.
   */
  function ensureTenant(team: string): Promise<void> {
    const passes = tenantPasses.get(team);
    if (passes?.queued) return passes.queued;
    const pass = (after: Promise<void> | undefined): Promise<void> => {
      const p = (after ? after.catch(() => undefined) : Promise.resolve()).then(() => {
        const current = tenantPasses.get(team);
        if (current?.queued === p) tenantPasses.set(team, { running: p });
        return applyTenant(team);
      });
      void p
        .catch(() => undefined)
        .then(() => {
          const current = tenantPasses.get(team);
          if (current?.running === p && !current.queued) tenantPasses.delete(team);
        });
      return p;
    };
    if (passes) {
      const queued = pass(passes.running);
      tenantPasses.set(team, { running: passes.running, queued });
      return queued;
    }
    const running = pass(undefined);
    tenantPasses.set(team, { running });
    return running;
  }
  async function applyTenant(team: string): Promise<void> {
    const input = await opts.lookup.team(team);
    if (!input) throw new Error(`team ${team} does not exist`);
    const objects = renderTeam(settings, input);
    const d = digest(objects);
    if (teamDigests.get(team) === d) return;
    await apply(objects);
    await pruneTeam(team, objects);
    teamDigests.set(team, d);
  }

  async function syncTenants(): Promise<{ updated: number; deleted: number }> {
    const out = { updated: 0, deleted: 0 };
    const list = await client.get<{ items: V1Namespace[] }>(`/api/v1/namespaces?labelSelector=${encodeURIComponent(`${LABEL_MANAGED_BY}=atrium,${LABEL_COMPONENT}=tenant`)}`);
    for (const ns of list.items) {
      const name = ns.metadata?.name;
      const team = ns.metadata?.labels?.[LABEL_TEAM];
      if (!name || !team || ns.metadata?.deletionTimestamp || !name.startsWith(settings.namespacePrefix)) continue;
      if (await opts.lookup.team(team)) {
        const before = client.requests;
        await ensureTenant(team);
        if (client.requests !== before) out.updated++;
        continue;
      }
      // a team is deleted only once its workspaces are; one still being removed keeps the namespace until it is gone
      if (sets.list().some((s) => s.metadata?.namespace === name) || pods.list().some((p) => p.metadata?.namespace === name)) continue;
      await client.delete(`/api/v1/namespaces/${name}`).catch((err: unknown) => {
        if (!(err instanceof KubeError && err.status === 404)) throw err;
      });
      teamDigests.delete(team);
      for (const path of applied.keys()) if (path.includes(`/namespaces/${name}/`) || path.endsWith(`/namespaces/${name}`)) applied.delete(path);
      opts.log.info({ cluster: opts.cluster, namespace: name }, `deleted the namespace of deleted team ${team}`);
      out.deleted++;
    }
    return out;
  }

  /** Deletes the team's objects of optional kinds that are no longer rendered (a mesh or member role switched off). */
  async function pruneTeam(team: string, keep: KubeObject[]): Promise<void> {
    const ns = namespaceOf(settings, team);
    const kept = new Set(keep.map((o) => pathOf(o)));
    const selector = encodeURIComponent(`app.kubernetes.io/managed-by=atrium,${LABEL_TEAM}=${team},app.kubernetes.io/component=tenant`);
    for (const probe of [
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role' },
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding' },
      { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy' },
    ]) {
      const collection = pathOf({ ...probe, metadata: { name: '', namespace: ns } }, false);
      const list = await client.get<{ items: KubeObject[] }>(`${collection}?labelSelector=${selector}`);
      for (const o of list.items) {
        const p = pathOf({ ...o, ...probe });
        if (!kept.has(p)) {
          await client.delete(p);
          applied.delete(p);
        }
      }
    }
  }

  async function applyWorkspace(spec: WorkspaceSpec, running: boolean): Promise<void> {
    const objects = renderWorkspace(settings, { spec, running });
    const namespace = namespaceOf(settings, spec.team);
    const policy = workspaceNames(spec).egress;
    const key = `${namespace}/${policy}`;
    // a workspace whose profile no longer allows any range (a restart with another profile) loses the old policy
    if (egressPolicies.has(key) && !objects.some((o) => o.kind === 'NetworkPolicy')) {
      const path = pathOf({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: policy, namespace } });
      await client.delete(path).catch((err: unknown) => {
        if (!(err instanceof KubeError && err.status === 404)) throw err;
      });
      applied.delete(path);
      egressPolicies.delete(key);
    }
    await apply(objects);
    if (objects.some((o) => o.kind === 'NetworkPolicy')) egressPolicies.add(key);
  }

  /** The claims of the team's own volumes a workspace mounts, made when missing (a volume sync that has not run yet); never changed here. */
  async function ensureOwnVolumes(spec: WorkspaceSpec): Promise<void> {
    for (const v of spec.volumes.filter((x) => x.team === spec.team)) {
      const claim = renderVolumeClaim(settings, v);
      const exists = await client.get(pathOf(claim)).then(() => true, (err: unknown) => {
        if (err instanceof KubeError && err.status === 404) return false;
        throw err;
      });
      if (!exists) await apply([claim]);
    }
  }

  /**
   * Team volumes as claims in their teams' namespaces, grown with them;
   * datasets as a read-only volume and claim in each namespace they are
   * published to, once the owner's claim is bound (their storage is what
   * it is bound to); claims and volumes of what is gone are deleted. A
   * volume the cluster refuses (a class that cannot grow) is logged and the
   * others go on.
   */
  async function syncVolumes(wanted: VolumeState[]): Promise<void> {
    const keep = new Set<string>();
    for (const v of wanted) {
      try {
        await ensureTenant(v.team);
        const claim = renderVolumeClaim(settings, v);
        keep.add(pathOf(claim));
        await apply([claim]);
        if (v.sharedWith.length === 0) continue;
        const bound = await client.get<KubeObject>(pathOf(claim));
        const pvName = (bound.spec as { volumeName?: string } | undefined)?.volumeName;
        for (const consumer of v.sharedWith) {
          const ns = namespaceOf(settings, consumer);
          keep.add(`/api/v1/namespaces/${ns}/persistentvolumeclaims/${volumeClaimName(v.team, v.name, consumer)}`);
          keep.add(`/api/v1/persistentvolumes/${datasetVolumeName(ns, v.team, v.name)}`);
        }
        if (!pvName) {
          opts.log.info({ cluster: opts.cluster, volume: `${v.team}/${v.name}` }, 'dataset not published yet: its claim is not bound');
          continue;
        }
        const source = await client.get<KubeObject>(`/api/v1/persistentvolumes/${pvName}`);
        for (const consumer of v.sharedWith) {
          await ensureTenant(consumer);
          await apply(renderDatasetClaim(settings, v, consumer, source));
        }
      } catch (err) {
        opts.log.warn({ err, cluster: opts.cluster, volume: `${v.team}/${v.name}` }, 'volume sync failed for this volume');
        // what exists of it stays
        keep.add(pathOf(renderVolumeClaim(settings, v)));
        for (const consumer of v.sharedWith) {
          const ns = namespaceOf(settings, consumer);
          keep.add(`/api/v1/namespaces/${ns}/persistentvolumeclaims/${volumeClaimName(v.team, v.name, consumer)}`);
          keep.add(`/api/v1/persistentvolumes/${datasetVolumeName(ns, v.team, v.name)}`);
        }
      }
    }
    const selector = encodeURIComponent(`${LABEL_MANAGED_BY}=atrium,${LABEL_COMPONENT} in (volume,dataset)`);
    const claims = await client.get<{ items: KubeObject[] }>(`/api/v1/persistentvolumeclaims?labelSelector=${selector}`);
    const volumes = await client.get<{ items: KubeObject[] }>(`/api/v1/persistentvolumes?labelSelector=${encodeURIComponent(`${LABEL_MANAGED_BY}=atrium,${LABEL_COMPONENT}=dataset`)}`);
    const stale = [
      ...claims.items.map((o) => pathOf({ ...o, apiVersion: 'v1', kind: 'PersistentVolumeClaim' })),
      ...volumes.items.map((o) => pathOf({ ...o, apiVersion: 'v1', kind: 'PersistentVolume' })),
    ].filter((p) => !keep.has(p));
    for (const path of stale) {
      await client.delete(path).catch((err: unknown) => {
        if (!(err instanceof KubeError && err.status === 404)) throw err;
      });
      applied.delete(path);
      opts.log.info({ cluster: opts.cluster, object: path }, 'deleted the claim or volume of a deleted volume or withdrawn dataset');
    }
  }

  /** Resolves when `test` holds for the workspace, checked on every change the watches see. */
  function until(id: string, test: () => boolean, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (test()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        changed.delete(check);
        clearTimeout(timer);
        signal?.removeEventListener('abort', aborted);
        resolve(ok);
      };
      const check = (changedId: string) => {
        if (changedId === id && test()) done(true);
      };
      const aborted = () => done(false);
      const timer = setTimeout(() => done(false), timeoutMs);
      signal?.addEventListener('abort', aborted);
      changed.add(check);
    });
  }

  // endpoints through the API server: a root-only Unix socket per workspace and port, each connection one port-forward
  const forwards = new Map<string, Server>();
  const portForward = new PortForward(client.kc);

  async function forwardConnection(namespace: string, pod: string, port: number): Promise<Duplex> {
    const toPod = new PassThrough();
    const fromPod = new PassThrough();
    const ws = await portForward.portForward(namespace, pod, [port], fromPod, null, toPod);
    const socket = typeof ws === 'function' ? ws() : ws;
    const duplex = Duplex.from({ readable: fromPod, writable: toPod });
    const close = () => {
      socket?.close();
      duplex.destroy();
    };
    socket?.on('close', () => duplex.push(null));
    duplex.on('close', close);
    return duplex;
  }

  async function socketFor(id: string, which: 'http' | 'ssh', namespace: string, pod: string): Promise<string> {
    const key = `${id}-${which}`;
    const path = join(opts.socketDir, `${key}.sock`);
    if (forwards.has(key)) return path;
    await rm(path, { force: true });
    const server = createServer((conn) => {
      forwardConnection(namespace, pod, WORKSPACE_PORTS[which])
        .then((remote) => {
          conn.pipe(remote).pipe(conn);
          const end = () => {
            conn.destroy();
            remote.destroy();
          };
          conn.on('close', end).on('error', end);
          remote.on('close', end).on('error', end);
        })
        .catch((err: unknown) => {
          log.warn({ err, workspace: id }, 'port-forward through the API server failed');
          conn.destroy();
        });
    });
    forwards.set(key, server);
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(path, resolve));
    return path;
  }

  async function closeForwards(id: string): Promise<void> {
    for (const which of ['http', 'ssh']) {
      const key = `${id}-${which}`;
      const server = forwards.get(key);
      if (!server) continue;
      forwards.delete(key);
      server.close();
      await rm(join(opts.socketDir, `${key}.sock`), { force: true });
    }
  }

  function knownIds(): Set<string> {
    const ids = new Set<string>();
    for (const o of [...sets.list(), ...pods.list()]) if (idOf(o)) ids.add(idOf(o)!);
    return ids;
  }

  function observationOf(id: string): Observation | undefined {
    if (unreachable !== null && (setOf(id) || podOf(id))) return { workspaceId: id, phase: 'unknown', reason: `cluster ${opts.cluster} cannot be reached: ${unreachable}` };
    const p = phaseOf(id);
    return p && { workspaceId: id, phase: p.phase, ...(p.reason ? { reason: p.reason } : {}) };
  }

  const runtime: KubernetesRuntime = {
    name: opts.cluster,
    writer,
    get requests() {
      return client.requests;
    },
    get unreachable() {
      return unreachable;
    },
    get relists() {
      return pods.relists + sets.relists + events.relists + nodes.relists;
    },

    ensureTenant,
    syncTenants,
    holds: (id) => Boolean(setOf(id) ?? podOf(id)),

    async start(spec) {
      specs.set(spec.id, spec);
      await ensureTenant(spec.team);
      await ensureOwnVolumes(spec);
      await applyWorkspace(spec, true);
    },

    syncVolumes,

    async stop(id) {
      const sts = setOf(id);
      if (!sts) return;
      const spec = await specOf(id);
      await apply([renderStatefulSet(settings, { spec, running: false })]);
      await closeForwards(id);
      await until(id, () => !podOf(id), (settings.stopGraceSeconds + 30) * 1000);
    },

    async remove(id, { purge }) {
      await closeForwards(id);
      const sts = setOf(id);
      const spec = specs.get(id) ?? (await opts.lookup.spec(id).catch(() => undefined));
      const namespace = sts?.metadata?.namespace ?? (spec && namespaceOf(settings, spec.team));
      const name = sts?.metadata?.labels?.['atrium.dev/workspace'] ?? spec?.name;
      if (!namespace || !name) return;
      const names = workspaceNames({ name });
      const targets = [
        { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: names.statefulSet, namespace } },
        { apiVersion: 'v1', kind: 'Service', metadata: { name: names.service, namespace } },
        { apiVersion: 'v1', kind: 'Secret', metadata: { name: names.secret, namespace } },
        ...(egressPolicies.has(`${namespace}/${names.egress}`) ? [{ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: names.egress, namespace } }] : []),
        ...(purge ? [{ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: names.home, namespace } }] : []),
      ];
      egressPolicies.delete(`${namespace}/${names.egress}`);
      for (const t of targets) {
        const path = pathOf(t);
        applied.delete(path);
        await client.delete(path, { apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy: 'Background' }).catch((err: unknown) => {
          if (!(err instanceof KubeError && err.status === 404)) throw err;
        });
      }
      specs.delete(id);
      lastPhase.delete(id);
      eventsOf.delete(id);
      eventCount.delete(id);
    },

    async inventory() {
      return [...knownIds()].map(observationOf).filter((o): o is Observation => o !== undefined);
    },

    async *observe(signal) {
      const queue: string[] = [];
      let wake: (() => void) | undefined;
      const onChange = (id: string) => {
        queue.push(id);
        wake?.();
      };
      changed.add(onChange);
      const aborted = () => wake?.();
      signal.addEventListener('abort', aborted);
      try {
        while (!signal.aborted) {
          if (queue.length === 0) await new Promise<void>((r) => (wake = r));
          wake = undefined;
          for (const id of queue.splice(0)) {
            const o = observationOf(id);
            const key = o ? `${o.phase}:${o.reason ?? ''}` : 'gone';
            if (lastPhase.get(id) === key) continue;
            lastPhase.set(id, key);
            if (o) yield o;
          }
        }
      } finally {
        changed.delete(onChange);
        signal.removeEventListener('abort', aborted);
      }
    },

    async waitReady(id, o) {
      // two clocks: the cluster's, to make the pod and start its container (restarted when a node is found after a
      // wait for room), then the app's, to answer once its container runs
      let clusterDeadline = Date.now() + opts.startTimeoutMs;
      let appDeadline: number | undefined;
      let wasPending = false;
      let said = '';
      const seenEvents = new Set<string>();
      for (;;) {
        if (o.signal.aborted) throw new Error('control plane shutting down');
        const p = phaseOf(id);
        for (const e of eventsOf.get(id) ?? []) {
          const key = `${e.metadata?.uid ?? ''}:${e.count ?? 1}`;
          if (seenEvents.has(key)) continue;
          seenEvents.add(key);
          // the scheduler's and kubelet's own words, as events on the workspace
          if (e.type === 'Warning' || e.reason === 'Scheduled' || e.reason === 'Pulling' || e.reason === 'Pulled') {
            await o.progress({ phase: p?.phase === 'pending' ? 'pending' : 'starting', message: `${e.reason ?? 'event'}: ${e.message ?? ''}` });
          }
        }
        if (p?.phase === 'running') return;
        if (p?.phase === 'failed') throw new Error(p.reason ?? 'the pod failed');
        const now = `${p?.phase ?? ''}:${p?.reason ?? ''}`;
        if (now !== said && (p?.phase === 'pending' || p?.phase === 'starting')) {
          said = now;
          await o.progress({ phase: p.phase, message: p.reason ?? p.phase });
        }
        const pending = p?.phase === 'pending';
        if (wasPending && !pending) clusterDeadline = Date.now() + opts.startTimeoutMs;
        wasPending = pending;
        if (appDeadline === undefined && podOf(id)?.status?.phase === 'Running') appDeadline = Date.now() + o.timeoutMs;
        // waiting for capacity has no deadline: the pod runs when a node has room, as Kubernetes schedules it
        const left = pending ? 60_000 : (appDeadline ?? clusterDeadline) - Date.now();
        if (left <= 0) {
          throw new Error(
            appDeadline === undefined
              ? `the cluster did not start the pod within ${Math.round(opts.startTimeoutMs / 1000)}s (kubernetes.startTimeout): ${p?.reason ?? 'no pod'}`
              : `the app did not answer within ${Math.round(o.timeoutMs / 1000)}s`,
          );
        }
        const events = eventCount.get(id) ?? 0;
        const running = podOf(id)?.status?.phase === 'Running';
        await until(id, () => {
          const q = phaseOf(id);
          return q?.phase !== p?.phase || q?.reason !== p?.reason || (eventCount.get(id) ?? 0) !== events || (podOf(id)?.status?.phase === 'Running') !== running;
        }, Math.min(left, 5000), o.signal);
      }
    },

    async endpoint(id, port) {
      const pod = podOf(id);
      if (!pod || phaseOf(id)?.phase !== 'running') throw new Error(`workspace ${id} has no ${port} endpoint (not running)`);
      const spec = await specOf(id);
      const headers: Record<string, string> = port === 'http' && spec.environment.kind === 'jupyter' ? { authorization: `token ${jupyterToken(spec)}` } : {};
      if (opts.endpoint === 'direct') {
        const host = pod.status?.podIP;
        if (!host) throw new Error(`workspace ${id}'s pod has no IP yet`);
        const target = { host, port: WORKSPACE_PORTS[port] };
        return {
          address: target,
          headers,
          connect: () =>
            new Promise((resolve, reject) => {
              const s = connect(target);
              s.once('connect', () => resolve(s)).once('error', reject);
            }),
        } satisfies Endpoint;
      }
      const socketPath = await socketFor(id, port, pod.metadata!.namespace!, pod.metadata!.name!);
      return {
        address: { socketPath },
        headers,
        connect: () =>
          new Promise((resolve, reject) => {
            const s = connect({ path: socketPath });
            s.once('connect', () => resolve(s)).once('error', reject);
          }),
      } satisfies Endpoint;
    },

    async *logs(id, o: LogOptions = {}) {
      const pod = podOf(id);
      if (!pod) return;
      const q = new URLSearchParams({ container: 'workspace' });
      if (o.tail !== undefined) q.set('tailLines', String(o.tail));
      if (o.follow) q.set('follow', 'true');
      const res = await client.stream(`/api/v1/namespaces/${pod.metadata!.namespace!}/pods/${pod.metadata!.name!}/log?${q.toString()}`, o.signal);
      let rest = '';
      for await (const chunk of res) {
        rest += (chunk as Buffer).toString('utf8');
        const lines = rest.split('\n');
        rest = lines.pop()!;
        for (const l of lines) yield `${l}\n`;
      }
      if (rest) yield rest;
    },

    async activity(): Promise<Activity> {
      // CPU and in-workspace signals would cost API requests per workspace and minute; proxy and SSH traffic keep workspaces alive here
      return { cpuSeconds: 0, gpuUtilization: null, sshSessions: 0, busyKernels: 0, appLastActivity: null };
    },

    async authorize(id, lines) {
      if (!setOf(id)) return;
      const spec = { ...(await specOf(id)) };
      spec.ssh = { ...spec.ssh, authorizedKeys: lines };
      specs.set(id, spec);
      await apply([renderAccessSecret(settings, { spec, running: true })]);
    },

    async notify() {
      // writing to terminals needs exec into the pod, a right Atrium's ClusterRole does not hold on purpose
    },

    async capacity(): Promise<Capacity> {
      let cpuMilli = 0;
      let memoryBytes = 0;
      const gpus: Gpu[] = [];
      for (const n of nodes.list()) {
        if (n.spec?.unschedulable) continue;
        if (n.status?.conditions?.find((c) => c.type === 'Ready')?.status !== 'True') continue;
        const a = n.status.allocatable ?? {};
        cpuMilli += parseCpu(a.cpu ?? '0') ?? 0;
        memoryBytes += parseBytes(a.memory ?? '0') ?? 0;
        const count = Number(a['nvidia.com/gpu'] ?? 0);
        const labels = n.metadata?.labels ?? {};
        const pool = settings.gpuPools.find((p) => Object.entries(p.nodeSelector).every(([k, v]) => labels[k] === v));
        for (let i = 0; i < count && pool; i++) gpus.push({ index: gpus.length, type: pool.type, uuid: `${n.metadata?.name ?? ''}/${i}`, heldBy: null });
      }
      let allocCpu = 0;
      let allocMem = 0;
      for (const p of pods.list()) {
        if (p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed') continue;
        for (const c of p.spec?.containers ?? []) {
          allocCpu += parseCpu(c.resources?.requests?.cpu ?? '0') ?? 0;
          allocMem += parseBytes(c.resources?.requests?.memory ?? '0') ?? 0;
        }
      }
      return {
        cpuMilli,
        memoryBytes,
        gpus,
        allocated: { cpuMilli: allocCpu, memoryBytes: allocMem },
        tiers: { standard: true, sandboxed: true },
        publicEgress: true,
      };
    },

    async dryRun(objects) {
      for (const o of objects) await client.apply(o, { dryRun: true });
    },

    async close() {
      for (const i of [pods, sets, events, nodes]) i.stop();
      for (const id of new Set([...forwards.keys()].map((k) => k.replace(/-(http|ssh)$/, '')))) await closeForwards(id);
      await sleep(0);
      client.close();
    },
  };
  return runtime;
}

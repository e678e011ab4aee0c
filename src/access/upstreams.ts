import { Pool } from 'undici';
import { Unavailable } from '../domain/index.js';
import type { Endpoint, Runtime } from '../runtime/index.js';
import type { Store, Workspace } from '../store/index.js';
import type { WorkspaceAddress } from './paths.js';

/** How long what a workspace route rests on is trusted before it is read again. */
const ROUTE_TTL_MS = 1_000;

export interface Upstream {
  endpoint: Endpoint;
  /** kept-alive connections to the app, this workspace's alone */
  pool: Pool;
}

/**
 * Where the proxy sends a workspace's requests: the workspace a
 * `/w/<team>/<ws>` address names (read from the store at most once a
 * second), and its app's endpoint with a pool of kept-alive connections,
 * dropped when the workspace stops, goes away or its endpoint refuses.
 */
export function createUpstreams(opts: { store: Pick<Store, 'teams' | 'workspaces'>; runtime: Pick<Runtime, 'endpoint'> | undefined; responseTimeoutMs: number }) {
  const { store, runtime } = opts;
  const routes = new Map<string, { at: number; ws: Workspace | undefined }>();
  const upstreams = new Map<string, Upstream>();
  /** endpoint lookups under way, so concurrent first requests to a workspace share one */
  const resolving = new Map<string, Promise<Upstream>>();

  /** Forgets a workspace's endpoint and closes its connections; `failed` is the one a failure came through, so a late failure cannot drop a newer endpoint. */
  function drop(workspaceId: string, failed?: Upstream): void {
    const u = upstreams.get(workspaceId);
    if (!u || (failed && u !== failed)) return;
    upstreams.delete(workspaceId);
    void u.pool.destroy().catch(() => undefined);
  }

  async function resolve(ws: Workspace): Promise<Upstream> {
    if (!runtime) throw new Unavailable('not_running', `workspace ${ws.team}/${ws.name} cannot run: no runtime is configured`, { phase: ws.phase });
    const endpoint = await runtime.endpoint(ws.id, 'http');
    // Per workspace, so a slow or dead one never holds connections another needs.
    const address = endpoint.address;
    const pool = new Pool('socketPath' in address ? 'http://localhost' : `http://${address.host}:${address.port}`, {
      ...('socketPath' in address ? { socketPath: address.socketPath } : {}),
      connections: 256,
      pipelining: 1,
      keepAliveTimeout: 60_000,
      headersTimeout: opts.responseTimeoutMs,
      // streams (event streams, long downloads) may pause as long as they like
      bodyTimeout: 0,
    });
    const u = { endpoint, pool };
    upstreams.set(ws.id, u);
    return u;
  }

  return {
    /** The workspace an address names, or undefined. */
    async lookup(a: WorkspaceAddress): Promise<Workspace | undefined> {
      const key = `${a.team}/${a.name}`;
      const at = Date.now();
      const hit = routes.get(key);
      if (hit && at - hit.at < ROUTE_TTL_MS) return hit.ws;
      const team = await store.teams.byName(a.team);
      const ws = team && (await store.workspaces.byName(team.id, a.name));
      routes.set(key, { at, ws });
      // a workspace deleted (or replaced by another of the same name) lets go of its connections too
      if (hit?.ws && hit.ws.id !== ws?.id) drop(hit.ws.id);
      if (ws && ws.phase !== 'running') drop(ws.id);
      return ws;
    },

    /** The running workspace's app endpoint and connection pool. */
    async of(ws: Workspace): Promise<Upstream> {
      const known = upstreams.get(ws.id);
      if (known) return known;
      let pending = resolving.get(ws.id);
      if (!pending) {
        pending = resolve(ws).finally(() => resolving.delete(ws.id));
        resolving.set(ws.id, pending);
      }
      return pending;
    },

    /** The app refused a connection through `failed`: its endpoint went with the sandbox, so both are looked up afresh. */
    refused(ws: Workspace, failed: Upstream): void {
      drop(ws.id, failed);
      routes.delete(`${ws.team}/${ws.name}`);
    },

    drop,

    /** Forgets routes not used for a minute. */
    sweep(): void {
      const at = Date.now();
      for (const [k, r] of routes) if (at - r.at > 60_000) routes.delete(k);
    },

    close(): void {
      for (const id of [...upstreams.keys()]) drop(id);
    },
  };
}

export type Upstreams = ReturnType<typeof createUpstreams>;

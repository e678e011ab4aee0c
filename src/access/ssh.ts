import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Authenticated, Identity, SshKeys } from '../identity/index.js';
import type { Runtime } from '../runtime/index.js';
import type { Store, Workspace } from '../store/index.js';
import type { Activity } from './activity.js';
import { createTunnels } from './relay.js';
import { createGateway } from './ssh-gateway.js';
import { createSshSessions, type SshMetrics } from './ssh-sessions.js';
import { createSshTunnel } from './ssh-tunnel.js';

export interface SshAccessOptions {
  store: Store;
  identity: Identity;
  runtime: Pick<Runtime, 'endpoint'> | undefined;
  keys: SshKeys;
  /** the proxy's activity record: an open SSH session keeps its workspace from being culled */
  activity: Pick<Activity, 'socketOpened' | 'socketClosed'>;
  metrics: SshMetrics;
  log: { info(obj: unknown, msg?: string): void; warn(obj: unknown, msg?: string): void; error(obj: unknown, msg?: string): void };
  /** the gateway; absent: only the tunnel */
  gateway: { host: string; port: number } | undefined;
  handshakeTimeoutMs: number;
  /** 0: never */
  idleTimeoutSeconds: number;
  /** a tunnel whose receiver takes nothing this long is closed (0: never) */
  stallSeconds: number;
  maxSessionsPerUser: number;
  /** the agent binary whose `relay` mode carries tunnels outside the event loop */
  relayAgent: string | undefined;
  startWorkspace(ws: Workspace, auth: Authenticated): Promise<void>;
}

/** SSH into workspaces (design §4): the gateway and the tunnel, sharing one session count, one audit and one set of metrics. */
export function createSshAccess(opts: SshAccessOptions) {
  const sessions = createSshSessions({ store: opts.store, activity: opts.activity, metrics: opts.metrics, maxPerUser: opts.maxSessionsPerUser, log: opts.log });
  const tunnels = createTunnels({ agentPath: opts.relayAgent, log: opts.log, stallSeconds: opts.stallSeconds, idleSeconds: opts.idleTimeoutSeconds });
  const tunnel = createSshTunnel({ store: opts.store, identity: opts.identity, runtime: opts.runtime, sessions, tunnels, log: opts.log });
  const gateway = opts.gateway
    ? createGateway({
        store: opts.store,
        identity: opts.identity,
        runtime: opts.runtime,
        keys: opts.keys,
        sessions,
        log: opts.log,
        host: opts.gateway.host,
        port: opts.gateway.port,
        handshakeTimeoutMs: opts.handshakeTimeoutMs,
        idleTimeoutSeconds: opts.idleTimeoutSeconds,
        startWorkspace: (ws, auth) => opts.startWorkspace(ws, auth),
      })
    : undefined;
  let port: number | undefined;
  // a key removed, a membership ended, an account disabled: open connections that no longer hold are ended
  const unsubscribe = opts.store.onAccessChange(() => void sessions.recheck());
  return {
    /** the gateway's port once listening (undefined: no gateway) */
    get port(): number | undefined {
      return port;
    },
    async listen(): Promise<void> {
      if (gateway) port = await gateway.listen();
    },
    /** Whether an upgrade request is for the tunnel; answers it when it is. */
    upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
      const m = tunnel.match(req);
      if (!m) return false;
      void tunnel.handle(req, socket, head, m).catch(() => socket.destroy());
      return true;
    },
    async close(): Promise<void> {
      unsubscribe();
      tunnels.close();
      await gateway?.close();
    },
  };
}

export type SshAccess = ReturnType<typeof createSshAccess>;

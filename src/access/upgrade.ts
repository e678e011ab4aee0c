import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { TooMany, Unavailable } from '../domain/index.js';
import type { Authenticated } from '../identity/index.js';
import { sendUpgradeError } from '../http/index.js';
import type { Workspace } from '../store/index.js';
import type { Activity } from './activity.js';
import { forwardHeaders, rawHead, responseHeaders, type ForwardedFrom } from './headers.js';
import type { ProxyMetrics } from './metrics.js';
import type { Tunnels } from './relay.js';
import type { Upstream, Upstreams } from './upstreams.js';

/** Adds `n` to a count kept per key, forgetting keys that reach zero. */
function count(counts: Map<string, number>, key: string, n: number): void {
  const v = (counts.get(key) ?? 0) + n;
  if (v <= 0) counts.delete(key);
  else counts.set(key, v);
}

/**
 * Upgraded connections (WebSockets: kernels, terminals) to workspaces: the
 * limits on how many are open at once, and the hand-over of an authorized
 * upgrade to the app, after which bytes flow both ways through a tunnel.
 */
export function createUpgrades(opts: {
  tunnels: Tunnels;
  upstreams: Pick<Upstreams, 'drop'>;
  metrics: ProxyMetrics;
  activity: Activity;
  /** upgraded connections open at once, per person across workspaces and per workspace */
  maxPerUser: number;
  maxPerWorkspace: number;
  responseTimeoutMs: number;
}) {
  const { tunnels, metrics, activity } = opts;
  /** tunnels open (or being opened) per person and per workspace */
  const open = { user: new Map<string, number>(), workspace: new Map<string, number>() };

  /**
   * Counts a tunnel against its person's and its workspace's limits, or
   * refuses it; the returned function gives the place back, once.
   */
  function hold(auth: Authenticated, ws: Workspace): () => void {
    const user = open.user.get(auth.user.id) ?? 0;
    const workspace = open.workspace.get(ws.id) ?? 0;
    if (user >= opts.maxPerUser) {
      throw new TooMany('too_many_connections', `you have ${user} connections (WebSockets) open to workspaces, the most allowed; close some tabs or terminals`, { open: user, limit: opts.maxPerUser });
    }
    if (workspace >= opts.maxPerWorkspace) {
      throw new TooMany('too_many_connections', `workspace ${ws.team}/${ws.name} has ${workspace} connections (WebSockets) open, the most allowed`, { open: workspace, limit: opts.maxPerWorkspace });
    }
    count(open.user, auth.user.id, 1);
    count(open.workspace, ws.id, 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      count(open.user, auth.user.id, -1);
      count(open.workspace, ws.id, -1);
    };
  }

  return {
    /**
     * Carries an authorized upgrade to workspace `ws`'s app: counted against
     * the limits (or refused), then the app's answer goes back through the
     * same header filter as any other before the bytes are tunnelled.
     */
    async connect(req: IncomingMessage, socket: Duplex, head: Buffer, ws: Workspace, auth: Authenticated, upstreamOf: () => Promise<Upstream>, from: Omit<ForwardedFrom, 'appHeaders'>): Promise<void> {
      const release = hold(auth, ws);
      let tunnelled = false;
      // until the tunnel holds the connection, the place is given back when the client's socket goes
      socket.once('close', () => {
        if (!tunnelled) release();
      });
      const upstream = await upstreamOf();
      const headers = forwardHeaders(req.headers, { ...from, appHeaders: upstream.endpoint.headers });
      headers.connection = 'Upgrade';
      headers.upgrade = req.headers.upgrade ?? 'websocket';
      // an upgraded connection leaves any pool: it gets its own
      const up = httpRequest({ ...upstream.endpoint.address, agent: false, method: req.method, path: req.url, headers });
      const timer = setTimeout(() => up.destroy(), opts.responseTimeoutMs);
      up.on('response', (ures) => {
        // the app declined the upgrade: pass its answer on and close
        clearTimeout(timer);
        socket.write(`${rawHead(`HTTP/1.1 ${ures.statusCode ?? 502} ${ures.statusMessage ?? ''}`, responseHeaders(ures.rawHeaders))}connection: close\r\n\r\n`);
        ures.pipe(socket);
      });
      up.on('upgrade', (ures, usocket, uhead) => {
        clearTimeout(timer);
        if (socket.destroyed) {
          usocket.destroy();
          return;
        }
        tunnelled = true;
        // the app's answer goes through the same filter as any other (its cookies kept to its host), then the upgrade itself
        const line = rawHead(`HTTP/1.1 101 ${ures.statusMessage ?? 'Switching Protocols'}`, responseHeaders(ures.rawHeaders));
        socket.write(`${line}connection: Upgrade\r\nupgrade: ${ures.headers.upgrade ?? 'websocket'}\r\n\r\n`);
        if (uhead.length) socket.write(uhead);
        if (head.length) usocket.write(head);
        const key = `${ws.team}/${ws.name}`;
        metrics.socketOpened(key);
        activity.socketOpened(ws.id);
        usocket.setNoDelay(true);
        if ('setNoDelay' in socket) (socket as Socket).setNoDelay(true);
        void tunnels.connect(socket, usocket, (inbound, outbound) => {
          release();
          metrics.socketClosed(key);
          activity.socketClosed(ws.id);
          metrics.bytes(inbound, outbound);
        });
      });
      up.on('error', (err) => {
        clearTimeout(timer);
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ECONNREFUSED' || code === 'ENOENT') opts.upstreams.drop(ws.id, upstream);
        sendUpgradeError(socket, new Unavailable('bad_gateway', `workspace ${ws.team}/${ws.name} is not answering`));
      });
      up.end();
    },
  };
}

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { can, DomainError, Forbidden, safeNext, hostName, isIpLiteral, isLoopbackName, Misdirected, Unauthenticated, Unavailable } from '../domain/index.js';
import type { Authenticated, Cookies, Identity } from '../identity/index.js';
import { sendError, sendUpgradeError } from '../http/index.js';
import type { Runtime } from '../runtime/index.js';
import type { Store, Workspace } from '../store/index.js';
import { createActivity } from './activity.js';
import { createEntry } from './entry.js';
import { forwardRequest } from './forward.js';
import { createGate, resourceOf } from './gate.js';
import { createProxyMetrics } from './metrics.js';
import { messagePage, statePage } from './pages.js';
import { appHost, checkPath, prefixOf, workspaceOfHost, type WorkspaceAddress } from './paths.js';
import { createTunnels } from './relay.js';
import { createUpgrades } from './upgrade.js';
import { createUpstreams } from './upstreams.js';

export interface ProxyOptions {
  store: Store;
  identity: Identity;
  cookies: Cookies;
  runtime: Runtime | undefined;
  log: { warn(obj: unknown, msg?: string): void; error(obj: unknown, msg?: string): void };
  isolation: 'origin' | 'single-origin';
  appsDomain: string;
  https: boolean;
  /** the portal's URL as people reach it, when configured */
  publicUrl: string | undefined;
  /** the trusted SSO header, never forwarded to a workspace */
  authHeader: string | undefined;
  activityFlushMs: number;
  responseTimeoutMs: number;
  /** lifetime of a workspace's app cookie, at most that of the session it came from */
  appSessionTtlSeconds: number;
  /** the agent binary, whose `relay` mode carries WebSockets outside the event loop; absent: piped in-process */
  relayAgent?: string | undefined;
  /** upgraded connections (WebSockets) open at once, per person across workspaces and per workspace */
  maxTunnelsPerUser: number;
  maxTunnelsPerWorkspace: number;
  /** a tunnel whose receiver takes none of the bytes waiting for it for this long is closed (0: never) */
  tunnelStallSeconds: number;
  /** a tunnel that moves nothing either way for this long is closed (0: never) */
  tunnelIdleSeconds: number;
  /** the listen host, which /metrics answers to beside IP addresses, loopback names and publicUrl's host */
  listenHost: string;
  /** /metrics: open to anyone who reaches it, or only with this bearer token or an admin's credentials */
  metrics: { open: boolean; token: string | undefined };
  /** more metrics served with the proxy's (SSH's) */
  moreMetrics?: { render(): string };
}

/** Constant-time comparison of two secrets of any length. */
function sameSecret(a: string, b: string): boolean {
  const digest = (v: string) => createHash('sha256').update(v).digest();
  return timingSafeEqual(digest(a), digest(b));
}

function wantsHtml(req: IncomingMessage): boolean {
  return (req.method === 'GET' || req.method === 'HEAD') && !req.headers.authorization && (req.headers.accept ?? '').includes('text/html');
}

function redirect(res: ServerResponse, location: string, headers: OutgoingHttpHeaders = {}): void {
  res.writeHead(302, { location, 'cache-control': 'no-store', 'content-length': 0, ...headers });
  res.end();
}

/** The address a workspace URL names, or the refusal of its path. */
function addressOf(req: IncomingMessage): WorkspaceAddress {
  const check = checkPath(req.url ?? '/');
  if (!check.ok) throw new DomainError('bad_path', `refused path: ${check.reason}`);
  return check.workspace;
}

/**
 * The authenticated proxy (design §4, §7): `/w/<team>/<ws>/…` reaches the
 * workspace's `http` endpoint for the people `can()` gives the connect right.
 *
 * With origin isolation (the default) the portal's origin only hands out
 * entry: a one-time code, redirected to `<ws>--<team>.<appsDomain>`, becomes
 * an HttpOnly host-only cookie valid for that workspace alone, and only that
 * origin proxies. Atrium's own cookies and the Authorization header never
 * reach the app; the app's own credentials (from the runtime) are added.
 *
 * The parts: header policy (headers.ts), entry codes and app sessions
 * (entry.ts), who may connect (gate.ts), upstream lookup (upstreams.ts),
 * HTTP forwarding (forward.ts) and the upgrade path (upgrade.ts).
 */
export function createProxy(opts: ProxyOptions) {
  const { store, identity, cookies, runtime, log } = opts;
  const metrics = createProxyMetrics();
  const activity = createActivity(store.workspaceStates, { flushMs: opts.activityFlushMs, onError: (err) => log.error({ err }, 'recording proxy activity failed') });
  const scheme = opts.https ? 'https' : 'http';
  const entry = createEntry({ appSessionTtlSeconds: opts.appSessionTtlSeconds, recheck: (auth) => identity.recheck(auth) });
  const upstreams = createUpstreams({ store, runtime, responseTimeoutMs: opts.responseTimeoutMs });
  const gate = createGate({ identity, cookies, entry, upstreams });
  /** upgraded connections: the HTTP server no longer tracks them, so closing ends them here */
  const tunnels = createTunnels({ agentPath: opts.relayAgent, log, stallSeconds: opts.tunnelStallSeconds, idleSeconds: opts.tunnelIdleSeconds });
  const upgrades = createUpgrades({
    tunnels,
    upstreams,
    metrics,
    activity,
    maxPerUser: opts.maxTunnelsPerUser,
    maxPerWorkspace: opts.maxTunnelsPerWorkspace,
    responseTimeoutMs: opts.responseTimeoutMs,
  });
  store.onAccessChange(() => gate.forget());
  const sweep = setInterval(() => {
    entry.sweep();
    upstreams.sweep();
    gate.sweep();
  }, 30_000);
  sweep.unref();

  /** The host a request names, with its port, as the browser sent it. */
  const portOf = (host: string | undefined): string => {
    const m = /:(\d+)$/.exec(host ?? '');
    return m ? `:${m[1]}` : '';
  };
  const appOrigin = (a: WorkspaceAddress, requestHost: string | undefined) => `${scheme}://${appHost(a, opts.appsDomain)}${portOf(requestHost)}`;
  const portalOrigin = (requestHost: string | undefined) => opts.publicUrl?.replace(/\/+$/, '') ?? `${scheme}://${opts.appsDomain}${portOf(requestHost)}`;
  const forwardedFrom = (req: IncomingMessage, a: WorkspaceAddress) => ({ remoteAddress: req.socket.remoteAddress ?? '', scheme, prefix: prefixOf(a), authHeader: opts.authHeader } as const);

  /** The answer for a workspace that is not running: its state for a browser, 503 with the phase for API clients. */
  function notRunning(req: IncomingMessage, res: ServerResponse, ws: Workspace, auth: Authenticated, onAppOrigin: boolean): void {
    if (wantsHtml(req)) {
      // the state page talks to the API, so it lives on the portal's origin
      if (onAppOrigin) return redirect(res, `${portalOrigin(req.headers.host)}${req.url}`);
      return statePage(res, { team: ws.team, name: ws.name, phase: ws.phase, desired: ws.desired, reason: ws.reason, canStart: can(auth.subject, 'workspace.operate', resourceOf(ws)) });
    }
    sendError(res, new Unavailable('not_running', `workspace ${ws.team}/${ws.name} is ${ws.phase}${ws.desired === 'running' ? ' (starting)' : ''}`, { phase: ws.phase, desired: ws.desired }, 5));
  }

  /** Portal origin with isolated origins: hands out entry to the workspace's own origin. */
  async function enterFromPortal(req: IncomingMessage, res: ServerResponse, a: WorkspaceAddress): Promise<void> {
    const { ws, auth } = await gate.authorize(req, a, false);
    if (ws.phase !== 'running') return notRunning(req, res, ws, auth, false);
    const code = entry.issueCode(auth, ws.id, a);
    redirect(res, `${appOrigin(a, req.headers.host)}/_atrium/enter?code=${code}&next=${encodeURIComponent(req.url ?? prefixOf(a))}`);
  }

  /** Workspace origin: exchanges a one-time code for this workspace's app cookie. */
  function enterOnApp(req: IncomingMessage, res: ServerResponse, a: WorkspaceAddress): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const value = entry.redeem(url.searchParams.get('code') ?? '', a);
    if (value === undefined) {
      return messagePage(res, 403, 'Link expired', `This sign-in link for ${a.team}/${a.name} is not valid any more. Open the workspace again from Atrium.`);
    }
    const fallback = `${prefixOf(a)}/`;
    const next = safeNext(url.searchParams.get('next') ?? undefined, fallback);
    redirect(res, next.startsWith(fallback) || next === prefixOf(a) ? next : fallback, {
      'set-cookie': cookies.set('app', value, opts.appSessionTtlSeconds, req.headers.host),
    });
  }

  /** A refusal for a browser (sign-in, a page) or for an API client (the error body). */
  function refuse(req: IncomingMessage, res: ServerResponse, err: DomainError, onAppOrigin: boolean): void {
    if (err.code === 'unauthenticated' && wantsHtml(req)) {
      // a browser: sign in on the portal, then come back through the entry redirect
      const back = req.url ?? '/';
      if (onAppOrigin) return redirect(res, `${portalOrigin(req.headers.host)}${back}`);
      return redirect(res, `/login?next=${encodeURIComponent(back)}`);
    }
    // a browser with a tossed cookie: the answer deletes it, so the same page again goes through
    if (err.code === 'duplicate_cookie' && wantsHtml(req)) return redirect(res, req.url ?? '/', err.headers);
    if (wantsHtml(req)) return messagePage(res, err.status, err.status === 404 ? 'Not found' : 'Refused', err.message);
    sendError(res, err, err.code === 'unauthenticated' ? { 'www-authenticate': 'Bearer' } : {});
  }

  /** The workspace a request's path names, checked against the origin it came to. */
  function targetOf(req: IncomingMessage, hostWs: WorkspaceAddress | undefined, upgrade: boolean): WorkspaceAddress {
    const a = addressOf(req);
    if (hostWs && (hostWs.team !== a.team || hostWs.name !== a.name)) {
      throw new DomainError('not_found', upgrade ? `workspace ${a.team}/${a.name} not found` : `this origin serves ${hostWs.team}/${hostWs.name} only`);
    }
    return a;
  }

  async function handleWorkspace(req: IncomingMessage, res: ServerResponse, hostWs: WorkspaceAddress | undefined): Promise<void> {
    const onAppOrigin = hostWs !== undefined;
    const a = targetOf(req, hostWs, false);
    if (!onAppOrigin && opts.isolation === 'origin') return enterFromPortal(req, res, a);
    const { ws, auth } = await gate.authorize(req, a, onAppOrigin);
    gate.checkSameOrigin(req, onAppOrigin ? appOrigin(a, req.headers.host) : `${scheme}://${req.headers.host ?? ''}`, false);
    if (ws.phase !== 'running') return notRunning(req, res, ws, auth, onAppOrigin);
    activity.request(ws.id);
    forwardRequest(req, res, ws, await upstreams.of(ws), { from: forwardedFrom(req, a), metrics, upstreams });
  }

  const publicHost = opts.publicUrl ? hostName(new URL(opts.publicUrl).host) : undefined;
  const listenHost = hostName(opts.listenHost.includes(':') && !opts.listenHost.startsWith('[') ? `[${opts.listenHost}]` : opts.listenHost);

  /**
   * Whether a Host header names this server: its public or listen name, a
   * loopback name, or an IP address. A page that rebinds its own DNS name
   * to this machine sends that name, and is refused.
   */
  function ourHost(host: string | undefined): boolean {
    const name = hostName(host);
    return name !== '' && (name === publicHost || name === listenHost || isLoopbackName(name) || isIpLiteral(name));
  }

  /**
   * /metrics names every team's workspaces, so it needs the scrape token or
   * an admin's credentials, wherever the request comes from (behind a front
   * proxy on this machine every request is local), unless it is configured
   * open.
   */
  async function handleMetrics(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!ourHost(req.headers.host)) throw new Misdirected(`this server does not answer for ${hostName(req.headers.host) || 'a request without a Host'}`);
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const scraper = opts.metrics.token !== undefined && bearer !== undefined && sameSecret(bearer, opts.metrics.token);
    if (!opts.metrics.open && !scraper) {
      const auth = await gate.portalAuth(req);
      if (!auth) throw new Unauthenticated('metrics need the scrape token (metrics.token) or an admin\'s token');
      if (!can(auth.subject, 'platform.admin', { kind: 'platform' })) throw new Forbidden('only platform admins may read metrics');
    }
    const body = metrics.render() + (opts.moreMetrics?.render() ?? '');
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  function hostWorkspace(req: IncomingMessage): WorkspaceAddress | undefined {
    return opts.isolation === 'origin' ? workspaceOfHost(req.headers.host, opts.appsDomain) : undefined;
  }

  /** An unexpected failure, logged; the client is told the workspace could not be reached. */
  function unexpected(err: unknown, req: IncomingMessage, what: string): DomainError {
    log.error({ err, url: req.url }, what);
    return new Unavailable('bad_gateway', 'the workspace could not be reached');
  }

  return {
    metrics,
    activity,
    /** the upgraded connections open now */
    tunnels,

    /**
     * Whether the proxy answers this request (the rest goes to the API and
     * portal): a workspace origin's request (its workspace), a portal path the
     * proxy serves (null), or undefined.
     */
    match(req: IncomingMessage): WorkspaceAddress | null | undefined {
      const hostWs = hostWorkspace(req);
      if (hostWs) return hostWs;
      const url = req.url ?? '/';
      return url.startsWith('/w/') || url === '/metrics' ? null : undefined;
    },

    /** Answers a request `match` claimed, with what it returned. */
    async handle(req: IncomingMessage, res: ServerResponse, matched: WorkspaceAddress | null): Promise<void> {
      const hostWs = matched ?? undefined;
      try {
        const url = req.url ?? '/';
        if (hostWs) {
          if (url.startsWith('/_atrium/enter?')) return enterOnApp(req, res, hostWs);
          if (url === '/' || url === '/favicon.ico') return redirect(res, `${prefixOf(hostWs)}/`);
          return await handleWorkspace(req, res, hostWs);
        }
        if (url === '/metrics') return await handleMetrics(req, res);
        return await handleWorkspace(req, res, undefined);
      } catch (err) {
        if (res.headersSent) {
          res.destroy();
          return;
        }
        refuse(req, res, err instanceof DomainError ? err : unexpected(err, req, 'proxy request failed'), hostWs !== undefined);
      }
    },

    /** WebSockets (kernels, terminals): the same checks and the same refusals as over HTTP, then bytes both ways with backpressure. */
    async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
      socket.on('error', () => socket.destroy());
      const hostWs = hostWorkspace(req);
      try {
        const a = targetOf(req, hostWs, true);
        if (!hostWs && opts.isolation === 'origin') throw new DomainError('not_found', 'workspaces are served on their own origins');
        const { ws, auth } = await gate.authorize(req, a, hostWs !== undefined);
        gate.checkSameOrigin(req, hostWs ? appOrigin(a, req.headers.host) : `${scheme}://${req.headers.host ?? ''}`, true);
        if (ws.phase !== 'running') throw new Unavailable('not_running', `workspace ${a.team}/${a.name} is ${ws.phase}`, { phase: ws.phase, desired: ws.desired }, 5);
        await upgrades.connect(req, socket, head, ws, auth, () => upstreams.of(ws), forwardedFrom(req, a));
      } catch (err) {
        const refusal = err instanceof DomainError ? err : unexpected(err, req, 'proxy upgrade failed');
        sendUpgradeError(socket, refusal, refusal.code === 'unauthenticated' ? { 'www-authenticate': 'Bearer' } : {});
      }
    },

    async close(): Promise<void> {
      clearInterval(sweep);
      tunnels.close();
      upstreams.close();
      await activity.close();
    },
  };
}

export type Proxy = ReturnType<typeof createProxy>;

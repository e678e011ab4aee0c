import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { request as httpRequest, STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { Pool } from 'undici';
import type { Duplex } from 'node:stream';
import { can, DomainError, hostName, isIpLiteral, isLoopbackName, type Resource } from '../domain/index.js';
import { DuplicateCookie, isAtriumCookieName, type Authenticated, type Cookies, type Identity } from '../identity/index.js';
import type { Endpoint, Runtime } from '../runtime/types.js';
import type { Store, Workspace } from '../store/index.js';
import { createActivity } from './activity.js';
import { createProxyMetrics } from './metrics.js';
import { createTunnels } from './relay.js';
import { messagePage, statePage } from './pages.js';
import { appHost, checkPath, prefixOf, safeNext, workspaceOfHost, type WorkspaceAddress } from './paths.js';

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
}

/** What an app cookie stands for: one person, one workspace. */
interface AppSession {
  auth: Authenticated;
  workspaceId: string;
  address: WorkspaceAddress;
  expiresAt: number;
  checkedAt: number;
}

interface Code {
  auth: Authenticated;
  workspaceId: string;
  address: WorkspaceAddress;
  expiresAt: number;
}

interface Upstream {
  endpoint: Endpoint;
  /** kept-alive connections to the app, this workspace's alone */
  pool: Pool;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect']);
const CODE_TTL_MS = 60_000;
/** entry codes outstanding at once, across everyone: each costs memory until used or expired */
const MAX_PENDING_CODES = 10_000;
/** how long what a workspace route and a credential rest on is trusted before it is read again */
const ROUTE_TTL_MS = 1_000;
const RECHECK_MS = 5_000;
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Headers a Connection header names beyond keep-alive and close, which are hop-by-hop too. */
function listedInConnection(connection: string | undefined): Set<string> | undefined {
  if (!connection) return undefined;
  const c = connection.toLowerCase();
  if (c === 'keep-alive' || c === 'close' || c === 'upgrade') return undefined;
  return new Set(c.split(',').map((s) => s.trim()));
}

/** The Cookie header without Atrium's own cookies, or undefined when nothing is left. */
function foreignCookies(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const kept = header.split(';').filter((p) => {
    const name = p.slice(0, p.indexOf('=')).trim();
    return name !== '' && !isAtriumCookieName(name);
  });
  return kept.length ? kept.join(';').trim() : undefined;
}

/**
 * An app may only set cookies for its own host: a Domain attribute would
 * reach the portal and other workspaces. Values are read as browsers read
 * them (RFC 6265 §5.2): the name-value pair ends at the first `;`, and an
 * attribute's name is what precedes its `=`, trimmed and in any case, so
 * `Domain =x` and `DOMAIN=x` are Domain attributes too. A cookie without a
 * name (no `=`, or nothing before it), which browsers may send as a bare
 * value, or with one of Atrium's names, is dropped whole.
 */
function hostOnlyCookies(values: string[]): string[] {
  const out: string[] = [];
  for (const v of values) {
    const [pair = '', ...attributes] = v.split(';');
    const eq = pair.indexOf('=');
    const name = eq === -1 ? '' : pair.slice(0, eq).trim();
    if (name === '' || isAtriumCookieName(name)) continue;
    const kept = attributes.filter((a) => {
      const at = a.indexOf('=');
      return (at === -1 ? a : a.slice(0, at)).trim().toLowerCase() !== 'domain';
    });
    out.push([pair, ...kept].join(';'));
  }
  return out;
}

/** Adds `n` to a count kept per key, forgetting keys that reach zero. */
function count(counts: Map<string, number>, key: string, n: number): void {
  const v = (counts.get(key) ?? 0) + n;
  if (v <= 0) counts.delete(key);
  else counts.set(key, v);
}

/** Constant-time comparison of two secrets of any length. */
function sameSecret(a: string, b: string): boolean {
  const digest = (v: string) => createHash('sha256').update(v).digest();
  return timingSafeEqual(digest(a), digest(b));
}

function wantsHtml(req: IncomingMessage): boolean {
  return (req.method === 'GET' || req.method === 'HEAD') && !req.headers.authorization && (req.headers.accept ?? '').includes('text/html');
}

function sendJson(res: ServerResponse, status: number, code: string, message: string, details?: Record<string, unknown>, headers: OutgoingHttpHeaders = {}): void {
  const body = JSON.stringify({ error: { code, message, ...(details ? { details } : {}) } });
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...headers });
  res.end(body);
}

function redirect(res: ServerResponse, location: string, headers: OutgoingHttpHeaders = {}): void {
  res.writeHead(302, { location, 'cache-control': 'no-store', 'content-length': 0, ...headers });
  res.end();
}

/** Writes a refusal as a plain HTTP answer on a socket that asked to upgrade: the same code and headers as over HTTP. */
function refuseUpgrade(socket: Duplex, r: Refusal): void {
  const body = JSON.stringify({ error: { code: r.code, message: r.message, ...(r.details ? { details: r.details } : {}) } });
  let head = `HTTP/1.1 ${r.status} ${STATUS_CODES[r.status] ?? 'Error'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n`;
  for (const [k, v] of Object.entries(r.headers)) for (const one of [v ?? []].flat()) head += `${k}: ${String(one)}\r\n`;
  socket.end(`${head}\r\n${body}`);
}

class Refusal extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly details?: Record<string, unknown>, readonly headers: OutgoingHttpHeaders = {}) {
    super(message);
  }
}

const notFound = (a: WorkspaceAddress) => new Refusal(404, 'not_found', `workspace ${a.team}/${a.name} not found`);

/**
 * The authenticated proxy (design §4, §7): `/w/<team>/<ws>/…` reaches the
 * workspace's `http` endpoint for the people `can()` gives the connect right.
 *
 * With origin isolation (the default) the portal's origin only hands out
 * entry: a one-time code, redirected to `<ws>--<team>.<appsDomain>`, becomes
 * an HttpOnly host-only cookie valid for that workspace alone, and only that
 * origin proxies. Atrium's own cookies and the Authorization header never
 * reach the app; the app's own credentials (from the runtime) are added.
 */
export function createProxy(opts: ProxyOptions) {
  const { store, identity, cookies, runtime, log } = opts;
  const metrics = createProxyMetrics();
  const activity = createActivity(store.workspaceStates, { flushMs: opts.activityFlushMs, onError: (err) => log.error({ err }, 'recording proxy activity failed') });
  const scheme = opts.https ? 'https' : 'http';
  const codes = new Map<string, Code>();
  const appSessions = new Map<string, AppSession>();
  const routes = new Map<string, { at: number; ws: Workspace | undefined }>();
  const upstreams = new Map<string, Upstream>();
  /** upgraded connections: the HTTP server no longer tracks them, so closing ends them here */
  const tunnels = createTunnels({ agentPath: opts.relayAgent, log, stallSeconds: opts.tunnelStallSeconds, idleSeconds: opts.tunnelIdleSeconds });
  /** tunnels open (or being opened) per person and per workspace */
  const tunnelsOf = { user: new Map<string, number>(), workspace: new Map<string, number>() };
  /** session cookie hash → authentication, for single-origin mode */
  const sessionAuth = new Map<string, { at: number; auth: Authenticated | undefined }>();
  store.onAccessChange(() => {
    sessionAuth.clear();
    for (const s of appSessions.values()) s.checkedAt = 0;
  });
  const sweep = setInterval(() => {
    const at = Date.now();
    for (const [k, c] of codes) if (c.expiresAt <= at) codes.delete(k);
    for (const [k, s] of appSessions) if (s.expiresAt <= at) appSessions.delete(k);
    for (const [k, r] of routes) if (at - r.at > 60_000) routes.delete(k);
    for (const [k, s] of sessionAuth) if (at - s.at > 60_000) sessionAuth.delete(k);
  }, 30_000);
  sweep.unref();

  /** The host a request names, with its port, as the browser sent it. */
  const portOf = (host: string | undefined): string => {
    const m = /:(\d+)$/.exec(host ?? '');
    return m ? `:${m[1]}` : '';
  };
  const appOrigin = (a: WorkspaceAddress, requestHost: string | undefined) => `${scheme}://${appHost(a, opts.appsDomain)}${portOf(requestHost)}`;
  const portalOrigin = (requestHost: string | undefined) => opts.publicUrl?.replace(/\/+$/, '') ?? `${scheme}://${opts.appsDomain}${portOf(requestHost)}`;

  async function lookup(a: WorkspaceAddress): Promise<Workspace | undefined> {
    const key = `${a.team}/${a.name}`;
    const at = Date.now();
    const hit = routes.get(key);
    if (hit && at - hit.at < ROUTE_TTL_MS) return hit.ws;
    const team = await store.teams.byName(a.team);
    const ws = team && (await store.workspaces.byName(team.id, a.name));
    routes.set(key, { at, ws });
    // a workspace deleted (or replaced by another of the same name) lets go of its connections too
    if (hit?.ws && hit.ws.id !== ws?.id) dropUpstream(hit.ws.id);
    if (ws && ws.phase !== 'running') dropUpstream(ws.id);
    return ws;
  }

  /** Forgets a workspace's endpoint and closes its connections; `failed` is the one a failure came through, so a late failure cannot drop a newer endpoint. */
  function dropUpstream(workspaceId: string, failed?: Upstream): void {
    const u = upstreams.get(workspaceId);
    if (!u || (failed && u !== failed)) return;
    upstreams.delete(workspaceId);
    void u.pool.destroy().catch(() => undefined);
  }

  /** endpoint lookups under way, so concurrent first requests to a workspace share one */
  const resolving = new Map<string, Promise<Upstream>>();

  async function upstreamFor(ws: Workspace): Promise<Upstream> {
    const known = upstreams.get(ws.id);
    if (known) return known;
    let pending = resolving.get(ws.id);
    if (!pending) {
      pending = resolveUpstream(ws).finally(() => resolving.delete(ws.id));
      resolving.set(ws.id, pending);
    }
    return pending;
  }

  async function resolveUpstream(ws: Workspace): Promise<Upstream> {
    if (!runtime) throw new Refusal(503, 'not_running', `workspace ${ws.team}/${ws.name} cannot run: no runtime is configured`, { phase: ws.phase });
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

  const resourceOf = (ws: Workspace): Resource => ({ kind: 'workspace', teamId: ws.teamId, ownerId: ws.ownerId, shared: ws.shared });

  /** One of Atrium's cookies from a request; a duplicate (one tossed from a sibling origin) is refused. */
  function cookieOf(req: IncomingMessage, kind: 'session' | 'app'): string | undefined {
    try {
      return cookies.read(req, kind);
    } catch (err) {
      if (err instanceof DuplicateCookie) throw new Refusal(err.status, err.code, err.message, undefined, { 'set-cookie': err.expire });
      throw err;
    }
  }

  /**
   * Counts a tunnel against its person's and its workspace's limits, or
   * refuses it; the returned function gives the place back, once.
   */
  function holdTunnel(auth: Authenticated, ws: Workspace): () => void {
    const user = tunnelsOf.user.get(auth.user.id) ?? 0;
    const workspace = tunnelsOf.workspace.get(ws.id) ?? 0;
    if (user >= opts.maxTunnelsPerUser) {
      throw new Refusal(429, 'too_many_connections', `you have ${user} connections (WebSockets) open to workspaces, the most allowed; close some tabs or terminals`, { open: user, limit: opts.maxTunnelsPerUser });
    }
    if (workspace >= opts.maxTunnelsPerWorkspace) {
      throw new Refusal(429, 'too_many_connections', `workspace ${ws.team}/${ws.name} has ${workspace} connections (WebSockets) open, the most allowed`, { open: workspace, limit: opts.maxTunnelsPerWorkspace });
    }
    count(tunnelsOf.user, auth.user.id, 1);
    count(tunnelsOf.workspace, ws.id, 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      count(tunnelsOf.user, auth.user.id, -1);
      count(tunnelsOf.workspace, ws.id, -1);
    };
  }

  /** Bearer token, or the portal session (single-origin mode and the entry redirect). */
  async function portalAuth(req: IncomingMessage): Promise<Authenticated | undefined> {
    const authorization = req.headers.authorization;
    const cookie = cookieOf(req, 'session');
    if (!authorization && cookie) {
      const hit = sessionAuth.get(cookie);
      if (hit && Date.now() - hit.at < ROUTE_TTL_MS * 2) return hit.auth;
    }
    let auth: Authenticated | undefined;
    try {
      auth = await identity.authenticate({ remoteAddress: req.socket.remoteAddress ?? '', authorization, sessionCookie: cookie, headers: req.headers });
    } catch (err) {
      if (err instanceof DomainError) throw new Refusal(401, 'unauthenticated', err.message);
      throw err;
    }
    if (!authorization && cookie) sessionAuth.set(cookie, { at: Date.now(), auth });
    return auth;
  }

  /** The app cookie of a workspace origin, re-checked against its session every few seconds. */
  async function appAuth(req: IncomingMessage, ws: Workspace): Promise<Authenticated | undefined> {
    const value = cookieOf(req, 'app');
    const s = value === undefined ? undefined : appSessions.get(value);
    if (!s || s.workspaceId !== ws.id) return undefined;
    const at = Date.now();
    if (s.expiresAt <= at) {
      appSessions.delete(value!);
      return undefined;
    }
    if (at - s.checkedAt > RECHECK_MS) {
      const fresh = await identity.recheck(s.auth);
      if (!fresh) {
        appSessions.delete(value!);
        return undefined;
      }
      s.auth = fresh;
      s.checkedAt = at;
    }
    return s.auth;
  }

  /**
   * Who is asking and whether they may connect. "Not found" and "not yours"
   * are the same answer; anonymous requests are told to authenticate.
   */
  async function authorize(req: IncomingMessage, a: WorkspaceAddress, onAppOrigin: boolean): Promise<{ ws: Workspace; auth: Authenticated }> {
    const ws = await lookup(a);
    let auth: Authenticated | undefined;
    if (req.headers.authorization) auth = await portalAuth(req);
    else if (onAppOrigin) auth = ws && (await appAuth(req, ws));
    else auth = await portalAuth(req);
    if (!auth) throw new Refusal(401, 'unauthenticated', `sign in to open ${a.team}/${a.name}`);
    if (!ws || !can(auth.subject, 'workspace.connect', resourceOf(ws))) throw notFound(a);
    return { ws, auth };
  }

  /**
   * Cookie-authenticated changes and WebSockets must come from the
   * workspace's own pages. The app's own CSRF defence is bypassed (Atrium
   * authenticates to it with its token), so this check stands in for it.
   */
  function checkSameOrigin(req: IncomingMessage, expectedOrigin: string, upgrade: boolean): void {
    if (req.headers.authorization) return;
    if (!upgrade && SAFE_METHODS.has(req.method ?? 'GET')) return;
    const origin = req.headers.origin;
    if (origin !== undefined) {
      if (origin !== expectedOrigin) throw new Refusal(403, 'csrf', `cross-origin request refused (Origin: ${origin})`);
      return;
    }
    const site = req.headers['sec-fetch-site'];
    if (site === 'same-origin' || (site === 'none' && !upgrade)) return;
    throw new Refusal(403, 'csrf', 'cookie-authenticated changes need an Origin header from the workspace itself');
  }

  function forwardHeaders(req: IncomingMessage, a: WorkspaceAddress, endpoint: Endpoint): OutgoingHttpHeaders {
    const out: OutgoingHttpHeaders = {};
    const listed = listedInConnection(req.headers.connection);
    const h = req.headers as IncomingHttpHeaders;
    for (const name in h) {
      if (HOP_BY_HOP.has(name) || listed?.has(name) || name === 'authorization' || name === 'cookie' || name.startsWith('x-forwarded-') || name === opts.authHeader) continue;
      out[name] = h[name];
    }
    const cookie = foreignCookies(req.headers.cookie);
    if (cookie) out.cookie = cookie;
    out['x-forwarded-for'] = req.socket.remoteAddress ?? '';
    out['x-forwarded-proto'] = scheme;
    out['x-forwarded-host'] = req.headers.host ?? '';
    out['x-forwarded-prefix'] = prefixOf(a);
    for (const k in endpoint.headers) out[k] = endpoint.headers[k];
    return out;
  }

  /** The app's response headers (raw name/value pairs) for the client: hop-by-hop removed, cookies kept to the app's own host. */
  function responseHeaders(raw: ReadonlyArray<string | Buffer>): OutgoingHttpHeaders {
    const text = (v: string | Buffer) => (typeof v === 'string' ? v : v.toString('latin1'));
    const out: OutgoingHttpHeaders = {};
    const cookies: string[] = [];
    let listed: Set<string> | undefined;
    for (let i = 0; i < raw.length; i += 2) if (text(raw[i]!).toLowerCase() === 'connection') listed = listedInConnection(text(raw[i + 1]!));
    for (let i = 0; i < raw.length; i += 2) {
      const name = text(raw[i]!).toLowerCase();
      if (HOP_BY_HOP.has(name) || listed?.has(name)) continue;
      const value = text(raw[i + 1]!);
      if (name === 'set-cookie') cookies.push(value);
      else out[name] = out[name] === undefined ? value : `${String(out[name])}, ${value}`;
    }
    if (cookies.length) out['set-cookie'] = hostOnlyCookies(cookies);
    return out;
  }

  /** The answer for a workspace that is not running: its state for a browser, 503 with the phase for API clients. */
  function notRunning(req: IncomingMessage, res: ServerResponse, ws: Workspace, auth: Authenticated, onAppOrigin: boolean): void {
    if (wantsHtml(req)) {
      // the state page talks to the API, so it lives on the portal's origin
      if (onAppOrigin) return redirect(res, `${portalOrigin(req.headers.host)}${req.url}`);
      return statePage(res, { team: ws.team, name: ws.name, phase: ws.phase, desired: ws.desired, reason: ws.reason, canStart: can(auth.subject, 'workspace.operate', resourceOf(ws)) });
    }
    sendJson(res, 503, 'not_running', `workspace ${ws.team}/${ws.name} is ${ws.phase}${ws.desired === 'running' ? ' (starting)' : ''}`, { phase: ws.phase, desired: ws.desired }, { 'retry-after': '5' });
  }

  function forward(req: IncomingMessage, res: ServerResponse, ws: Workspace, a: WorkspaceAddress, upstream: Upstream): void {
    const started = process.hrtime.bigint();
    activity.request(ws.id);
    const bodiless = req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined;
    const headers = forwardHeaders(req, a, upstream.endpoint) as Record<string, string | string[]>;
    let inbound = 0;
    let outbound = 0;
    let abort: ((err: Error) => void) | undefined;
    let resume: (() => void) | undefined;
    res.on('drain', () => resume?.());
    res.on('close', () => {
      if (!res.writableFinished) abort?.(new Error('the client went away'));
      metrics.bytes(inbound, outbound);
    });
    if (!bodiless) req.on('data', (chunk: Buffer) => (inbound += chunk.length));
    send(0);

    function send(attempt: number): void {
      let answered = false;
      upstream.pool.dispatch(
        { path: req.url ?? '/', method: (req.method ?? 'GET') as 'GET', headers, body: bodiless ? null : req },
        {
          onConnect(abortRequest) {
            abort = abortRequest;
          },
          onHeaders(status, rawHeaders, resumeRequest, statusText) {
            if (status < 200) return true;
            answered = true;
            resume = resumeRequest;
            metrics.request(status, Number(process.hrtime.bigint() - started) / 1e9);
            res.writeHead(status, statusText, responseHeaders(rawHeaders));
            return true;
          },
          onData(chunk) {
            outbound += chunk.length;
            // false pauses the app's side until the client drains
            return res.write(chunk);
          },
          onComplete() {
            res.end();
          },
          onError(err) {
            // the client went away (and took this request with it): nothing to answer
            if (res.destroyed) return;
            if (answered || res.headersSent) {
              res.destroy();
              return;
            }
            const code = (err as NodeJS.ErrnoException).code;
            // a kept-alive connection the app closed meanwhile: a request without a body is safe to send once more
            if (attempt === 0 && bodiless && (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE')) return send(1);
            if (code === 'ECONNREFUSED' || code === 'ENOENT') {
              // the endpoint went with the sandbox: look it up afresh next time
              dropUpstream(ws.id, upstream);
              routes.delete(`${a.team}/${a.name}`);
            }
            const refusal = code === 'UND_ERR_HEADERS_TIMEOUT'
              ? new Refusal(504, 'timeout', `workspace ${a.team}/${a.name} did not answer in time`)
              : new Refusal(502, 'bad_gateway', `workspace ${a.team}/${a.name} is not answering`);
            metrics.request(refusal.status, Number(process.hrtime.bigint() - started) / 1e9);
            sendJson(res, refusal.status, refusal.code, refusal.message);
          },
          onUpgrade() {
            res.destroy();
          },
        },
      );
    }
  }

  /** Portal origin with isolated origins: hands out entry to the workspace's own origin. */
  async function enterFromPortal(req: IncomingMessage, res: ServerResponse, a: WorkspaceAddress): Promise<void> {
    const { ws, auth } = await authorize(req, a, false);
    if (ws.phase !== 'running') return notRunning(req, res, ws, auth, false);
    if (codes.size >= MAX_PENDING_CODES) {
      const at = Date.now();
      for (const [k, c] of codes) if (c.expiresAt <= at) codes.delete(k);
      if (codes.size >= MAX_PENDING_CODES) throw new Refusal(429, 'too_many_requests', 'too many workspace sign-ins in progress; try again in a minute');
    }
    const code = randomBytes(24).toString('base64url');
    codes.set(code, { auth, workspaceId: ws.id, address: a, expiresAt: Date.now() + CODE_TTL_MS });
    redirect(res, `${appOrigin(a, req.headers.host)}/_atrium/enter?code=${code}&next=${encodeURIComponent(req.url ?? prefixOf(a))}`);
  }

  /** Workspace origin: exchanges a one-time code for this workspace's app cookie. */
  function enterOnApp(req: IncomingMessage, res: ServerResponse, a: WorkspaceAddress): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const code = url.searchParams.get('code') ?? '';
    const entry = codes.get(code);
    codes.delete(code);
    const fallback = `${prefixOf(a)}/`;
    if (!entry || entry.expiresAt <= Date.now() || entry.address.team !== a.team || entry.address.name !== a.name) {
      return messagePage(res, 403, 'Link expired', `This sign-in link for ${a.team}/${a.name} is not valid any more. Open the workspace again from Atrium.`);
    }
    const next = safeNext(url.searchParams.get('next') ?? undefined, fallback);
    const value = randomBytes(32).toString('base64url');
    const ttl = opts.appSessionTtlSeconds;
    appSessions.set(value, { auth: entry.auth, workspaceId: entry.workspaceId, address: a, expiresAt: Date.now() + ttl * 1000, checkedAt: Date.now() });
    redirect(res, next.startsWith(fallback) || next === prefixOf(a) ? next : fallback, {
      'set-cookie': cookies.set('app', value, ttl, req.headers.host),
    });
  }

  function refuse(req: IncomingMessage, res: ServerResponse, r: Refusal, onAppOrigin: boolean): void {
    if (r.status === 401 && wantsHtml(req)) {
      // a browser: sign in on the portal, then come back through the entry redirect
      const back = req.url ?? '/';
      if (onAppOrigin) return redirect(res, `${portalOrigin(req.headers.host)}${back}`);
      return redirect(res, `/login?next=${encodeURIComponent(back)}`);
    }
    // a browser with a tossed cookie: the answer deletes it, so the same page again goes through
    if (r.code === 'duplicate_cookie' && wantsHtml(req)) return redirect(res, req.url ?? '/', r.headers);
    if (wantsHtml(req)) return messagePage(res, r.status, r.status === 404 ? 'Not found' : 'Refused', r.message);
    sendJson(res, r.status, r.code, r.message, r.details, { ...r.headers, ...(r.status === 401 ? { 'www-authenticate': 'Bearer' } : {}) });
  }

  async function handleWorkspace(req: IncomingMessage, res: ServerResponse, hostWs: WorkspaceAddress | undefined): Promise<void> {
    const onAppOrigin = hostWs !== undefined;
    const check = checkPath(req.url ?? '/');
    if (!check.ok) throw new Refusal(400, 'bad_path', `refused path: ${check.reason}`);
    const a = check.workspace;
    if (hostWs && (hostWs.team !== a.team || hostWs.name !== a.name)) throw new Refusal(404, 'not_found', `this origin serves ${hostWs.team}/${hostWs.name} only`);
    if (!onAppOrigin && opts.isolation === 'origin') return enterFromPortal(req, res, a);
    const { ws, auth } = await authorize(req, a, onAppOrigin);
    checkSameOrigin(req, onAppOrigin ? appOrigin(a, req.headers.host) : `${scheme}://${req.headers.host ?? ''}`, false);
    if (ws.phase !== 'running') return notRunning(req, res, ws, auth, onAppOrigin);
    forward(req, res, ws, a, await upstreamFor(ws));
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
    if (!ourHost(req.headers.host)) throw new Refusal(421, 'misdirected_request', `this server does not answer for ${hostName(req.headers.host) || 'a request without a Host'}`);
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const scraper = opts.metrics.token !== undefined && bearer !== undefined && sameSecret(bearer, opts.metrics.token);
    if (!opts.metrics.open && !scraper) {
      const auth = await portalAuth(req);
      if (!auth) throw new Refusal(401, 'unauthenticated', 'metrics need the scrape token (metrics.token) or an admin\'s token');
      if (!can(auth.subject, 'platform.admin', { kind: 'platform' })) throw new Refusal(403, 'forbidden', 'only platform admins may read metrics');
    }
    const body = metrics.render();
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  function hostWorkspace(req: IncomingMessage): WorkspaceAddress | undefined {
    return opts.isolation === 'origin' ? workspaceOfHost(req.headers.host, opts.appsDomain) : undefined;
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
        if (err instanceof Refusal) return refuse(req, res, err, hostWs !== undefined);
        log.error({ err, url: req.url }, 'proxy request failed');
        sendJson(res, 502, 'bad_gateway', 'the workspace could not be reached');
      }
    },

    /** WebSockets (kernels, terminals): the same checks, then bytes both ways with backpressure. */
    async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
      socket.on('error', () => socket.destroy());
      const hostWs = hostWorkspace(req);
      try {
        const check = checkPath(req.url ?? '/');
        if (!check.ok) throw new Refusal(400, 'bad_path', `refused path: ${check.reason}`);
        const a = check.workspace;
        if (hostWs && (hostWs.team !== a.team || hostWs.name !== a.name)) throw notFound(a);
        if (!hostWs && opts.isolation === 'origin') throw new Refusal(404, 'not_found', 'workspaces are served on their own origins');
        const { ws, auth } = await authorize(req, a, hostWs !== undefined);
        checkSameOrigin(req, hostWs ? appOrigin(a, req.headers.host) : `${scheme}://${req.headers.host ?? ''}`, true);
        if (ws.phase !== 'running') throw new Refusal(503, 'not_running', `workspace ${a.team}/${a.name} is ${ws.phase}`);
        const release = holdTunnel(auth, ws);
        let tunnelled = false;
        // until the tunnel holds the connection, the place is given back when the client's socket goes
        socket.once('close', () => {
          if (!tunnelled) release();
        });
        const upstream = await upstreamFor(ws);
        const headers = forwardHeaders(req, a, upstream.endpoint);
        headers.connection = 'Upgrade';
        headers.upgrade = req.headers.upgrade ?? 'websocket';
        // an upgraded connection leaves any pool: it gets its own
        const up = httpRequest({ ...upstream.endpoint.address, agent: false, method: req.method, path: req.url, headers });
        const timer = setTimeout(() => up.destroy(), opts.responseTimeoutMs);
        up.on('response', (ures) => {
          // the app declined the upgrade: pass its answer on and close
          clearTimeout(timer);
          let head = `HTTP/1.1 ${ures.statusCode ?? 502} ${ures.statusMessage ?? ''}\r\n`;
          const h = responseHeaders(ures.rawHeaders);
          for (const k in h) for (const v of [h[k]].flat()) head += `${k}: ${String(v)}\r\n`;
          socket.write(`${head}connection: close\r\n\r\n`);
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
          let line = `HTTP/1.1 101 ${ures.statusMessage ?? 'Switching Protocols'}\r\n`;
          const h = responseHeaders(ures.rawHeaders);
          for (const k in h) for (const v of [h[k]].flat()) line += `${k}: ${String(v)}\r\n`;
          line += `connection: Upgrade\r\nupgrade: ${ures.headers.upgrade ?? 'websocket'}\r\n`;
          socket.write(`${line}\r\n`);
          if (uhead.length) socket.write(uhead);
          if (head.length) usocket.write(head);
          const key = `${a.team}/${a.name}`;
          metrics.socketOpened(key);
          activity.socketOpened(ws.id);
          if ('setNoDelay' in usocket) (usocket as { setNoDelay(v: boolean): void }).setNoDelay(true);
          if ('setNoDelay' in socket) (socket as unknown as { setNoDelay(v: boolean): void }).setNoDelay(true);
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
          if (code === 'ECONNREFUSED' || code === 'ENOENT') dropUpstream(ws.id, upstream);
          refuseUpgrade(socket, new Refusal(502, 'bad_gateway', `workspace ${a.team}/${a.name} is not answering`));
        });
        up.end();
      } catch (err) {
        if (err instanceof Refusal) return refuseUpgrade(socket, err);
        log.error({ err, url: req.url }, 'proxy upgrade failed');
        refuseUpgrade(socket, new Refusal(502, 'bad_gateway', 'the workspace could not be reached'));
      }
    },

    async close(): Promise<void> {
      clearInterval(sweep);
      tunnels.close();
      for (const id of [...upstreams.keys()]) dropUpstream(id);
      await activity.close();
    },
  };
}

export type Proxy = ReturnType<typeof createProxy>;

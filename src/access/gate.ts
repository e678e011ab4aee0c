import type { IncomingMessage } from 'node:http';
import { can, DomainError, Forbidden, NotFound, Unauthenticated, type Resource } from '../domain/index.js';
import type { Authenticated, Cookies, Identity } from '../identity/index.js';
import type { Workspace } from '../store/index.js';
import type { Entry } from './entry.js';
import type { WorkspaceAddress } from './paths.js';
import type { Upstreams } from './upstreams.js';

/** How long a portal session's authentication is trusted before it is read again. */
const SESSION_TTL_MS = 2_000;
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export const resourceOf = (ws: Workspace): Resource => ({ kind: 'workspace', teamId: ws.teamId, ownerId: ws.ownerId, shared: ws.shared });

/**
 * Who is asking the proxy and whether they may connect: the same `can()`
 * connect right as everywhere else (design §7), from a bearer token, the
 * portal session or a workspace origin's app session.
 */
export function createGate(opts: { identity: Identity; cookies: Cookies; entry: Entry; upstreams: Pick<Upstreams, 'lookup'> }) {
  const { identity, cookies, entry, upstreams } = opts;
  /** session cookie → authentication, for single-origin mode and entry redirects */
  const sessionAuth = new Map<string, { at: number; auth: Authenticated | undefined }>();

  /** Bearer token, or the portal session (single-origin mode and the entry redirect). */
  async function portalAuth(req: IncomingMessage): Promise<Authenticated | undefined> {
    const authorization = req.headers.authorization;
    const cookie = cookies.read(req, 'session');
    if (!authorization && cookie) {
      const hit = sessionAuth.get(cookie);
      if (hit && Date.now() - hit.at < SESSION_TTL_MS) return hit.auth;
    }
    let auth: Authenticated | undefined;
    try {
      auth = await identity.authenticate({ remoteAddress: req.socket.remoteAddress ?? '', authorization, sessionCookie: cookie, headers: req.headers });
    } catch (err) {
      if (err instanceof DomainError) throw new Unauthenticated(err.message);
      throw err;
    }
    if (!authorization && cookie) sessionAuth.set(cookie, { at: Date.now(), auth });
    return auth;
  }

  return {
    portalAuth,

    /**
     * The workspace an address names and who asks for it, when they may
     * connect. "Not found" and "not yours" are the same answer; anonymous
     * requests are told to authenticate.
     */
    async authorize(req: IncomingMessage, a: WorkspaceAddress, onAppOrigin: boolean): Promise<{ ws: Workspace; auth: Authenticated }> {
      const ws = await upstreams.lookup(a);
      let auth: Authenticated | undefined;
      if (req.headers.authorization) auth = await portalAuth(req);
      else if (onAppOrigin) auth = ws && (await entry.session(cookies.read(req, 'app'), ws.id));
      else auth = await portalAuth(req);
      if (!auth) throw new Unauthenticated(`sign in to open ${a.team}/${a.name}`);
      if (!ws || !can(auth.subject, 'workspace.connect', resourceOf(ws))) throw new NotFound(`workspace ${a.team}/${a.name}`);
      return { ws, auth };
    },

    /**
     * Cookie-authenticated changes and WebSockets must come from the
     * workspace's own pages. The app's own CSRF defence is bypassed (Atrium
     * authenticates to it with its token), so this check stands in for it.
     */
    checkSameOrigin(req: IncomingMessage, expectedOrigin: string, upgrade: boolean): void {
      if (req.headers.authorization) return;
      if (!upgrade && SAFE_METHODS.has(req.method ?? 'GET')) return;
      const origin = req.headers.origin;
      if (origin !== undefined) {
        if (origin !== expectedOrigin) throw new Forbidden(`cross-origin request refused (Origin: ${origin})`, 'csrf');
        return;
      }
      const site = req.headers['sec-fetch-site'];
      if (site === 'same-origin' || (site === 'none' && !upgrade)) return;
      throw new Forbidden('cookie-authenticated changes need an Origin header from the workspace itself', 'csrf');
    },

    /** Access changed somewhere: nothing cached about a session or an app session is trusted any more. */
    forget(): void {
      sessionAuth.clear();
      entry.recheckAll();
    },

    sweep(): void {
      const at = Date.now();
      for (const [k, s] of sessionAuth) if (at - s.at > 60_000) sessionAuth.delete(k);
    },
  };
}

export type Gate = ReturnType<typeof createGate>;

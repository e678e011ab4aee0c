import { DomainError, hostName, isIpLiteral, isLoopbackName } from '../domain/index.js';

/** Atrium's browser cookies: the portal session, and a workspace origin's app cookie. */
export type CookieKind = 'session' | 'app';

const BASE: Record<CookieKind, string> = { session: 'atrium_session', app: 'atrium_app' };

/** Any of Atrium's cookie names, prefixed or not, in any case: what an app may never set and never receives. */
export function isAtriumCookieName(name: string): boolean {
  return /^(__host-|__secure-)?atrium_/i.test(name.trim());
}

/**
 * A request carried one of Atrium's cookies twice: another origin under the
 * same parent domain set one. `expire` deletes every cookie of that name the
 * browser could have sent with this request except Atrium's own (host-only,
 * `Path=/`), so the next request goes through.
 */
export class DuplicateCookie extends DomainError {
  constructor(name: string, readonly expire: string[]) {
    super('duplicate_cookie', `the browser sent two ${name} cookies: a page on another site under the same parent domain set one. It is removed now; try again`, undefined, { 'set-cookie': expire });
  }
}

/**
 * Set-Cookie values deleting cookie `name` wherever a browser could have
 * stored it so as to send it to `host` with a request for `path`: for the
 * host and each parent domain (Domain attribute), at every path prefix, and
 * host-only at every prefix but `/`, where Atrium keeps its own.
 */
function expireEverywhere(name: string, host: string, path: string, secure: boolean): string[] {
  const labels = host.split('.');
  const domains = labels.length < 2 || isIpLiteral(host) ? [host] : labels.slice(0, -1).map((_, i) => labels.slice(i).join('.'));
  const segments = path.split('?')[0]!.split('/').filter(Boolean).slice(0, 10);
  const paths = ['/'];
  for (let i = 1; i <= segments.length; i++) paths.push(`/${segments.slice(0, i).join('/')}`, `/${segments.slice(0, i).join('/')}/`);
  const tail = `; Max-Age=0${secure ? '; Secure' : ''}`;
  const out: string[] = [];
  for (const p of paths) {
    for (const d of domains) out.push(`${name}=; Domain=${d}; Path=${p}${tail}`);
    if (p !== '/') out.push(`${name}=; Path=${p}${tail}`);
  }
  return out;
}

/**
 * The cookies Atrium sets and reads, named per request.
 *
 * Code on a workspace page can set cookies for the parent domain
 * (`Domain=localhost`, any `Path`), which browsers then send to the portal
 * and to every workspace origin beside the real ones, the more specific
 * path first. So wherever the browser treats the origin as secure (HTTPS,
 * or a loopback name such as `localhost`, `*.localhost` or 127.0.0.1 even
 * over plain HTTP) the cookies are `__Host-` prefixed: browsers accept such
 * a cookie only from the host itself, host-only, `Secure`, with `Path=/`,
 * and only that name is read, so a tossed cookie of any other name is
 * never looked at. Elsewhere (plain HTTP to another name, which Atrium
 * warns about at start) browsers refuse `Secure` cookies, so the plain
 * names are used; a tossed duplicate is then refused rather than read.
 */
export function createCookies(opts: { https: boolean; publicUrl?: string | undefined }) {
  const alwaysSecure = opts.https || (opts.publicUrl?.startsWith('https:') ?? false);

  function secure(host: string | undefined): boolean {
    return alwaysSecure || isLoopbackName(hostName(host));
  }

  function name(kind: CookieKind, host: string | undefined): string {
    return secure(host) ? `__Host-${BASE[kind]}` : BASE[kind];
  }

  return {
    name,

    /**
     * The value of one of Atrium's cookies in a request's Cookie header. A
     * header that carries the cookie twice is refused (DuplicateCookie): one
     * of the two was set by someone else, and which one is not knowable.
     */
    read(req: { headers: { cookie?: string | undefined; host?: string | undefined }; url?: string | undefined }, kind: CookieKind): string | undefined {
      const header = req.headers.cookie;
      if (!header) return undefined;
      const wanted = name(kind, req.headers.host);
      let value: string | undefined;
      for (const part of header.split(';')) {
        const eq = part.indexOf('=');
        if (eq <= 0 || part.slice(0, eq).trim() !== wanted) continue;
        if (value !== undefined) throw new DuplicateCookie(wanted, expireEverywhere(wanted, hostName(req.headers.host), req.url ?? '/', secure(req.headers.host)));
        value = part.slice(eq + 1).trim();
      }
      return value;
    },

    /** A Set-Cookie value for one of Atrium's cookies; `maxAge` 0 deletes it. */
    set(kind: CookieKind, value: string, maxAgeSeconds: number, host: string | undefined): string {
      return `${name(kind, host)}=${value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAgeSeconds}${secure(host) ? '; Secure' : ''}`;
    },
  };
}

export type Cookies = ReturnType<typeof createCookies>;

import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { isAtriumCookieName } from '../identity/index.js';

/**
 * What crosses the proxy in each direction (design §7): pure functions of
 * the headers alone, so every rule has a unit test of its own.
 */

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect']);

/** Headers a Connection header names beyond keep-alive and close, which are hop-by-hop too. */
export function listedInConnection(connection: string | undefined): Set<string> | undefined {
  if (!connection) return undefined;
  const c = connection.toLowerCase();
  if (c === 'keep-alive' || c === 'close' || c === 'upgrade') return undefined;
  return new Set(c.split(',').map((s) => s.trim()));
}

/** The Cookie header without Atrium's own cookies, or undefined when nothing is left. */
export function foreignCookies(header: string | undefined): string | undefined {
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
export function hostOnlyCookies(values: string[]): string[] {
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

/** Where a request came from and what it asked for, as the app is told in X-Forwarded-* headers. */
export interface ForwardedFrom {
  remoteAddress: string;
  scheme: 'http' | 'https';
  /** the workspace's path prefix, `/w/<team>/<ws>` */
  prefix: string;
  /** the trusted SSO header's name, which never reaches a workspace */
  authHeader: string | undefined;
  /** the app's own credentials from the runtime */
  appHeaders: Readonly<Record<string, string>>;
}

/**
 * The request headers the app receives: hop-by-hop headers, Atrium's
 * credentials (Authorization, its cookies, the SSO header) and any
 * X-Forwarded-* the client sent are dropped; the proxy's own X-Forwarded-*
 * and the app's credentials are added.
 */
export function forwardHeaders(h: IncomingHttpHeaders, from: ForwardedFrom): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const listed = listedInConnection(h.connection);
  for (const name in h) {
    if (HOP_BY_HOP.has(name) || listed?.has(name) || name === 'authorization' || name === 'cookie' || name.startsWith('x-forwarded-') || name === from.authHeader) continue;
    out[name] = h[name];
  }
  const cookie = foreignCookies(h.cookie);
  if (cookie) out.cookie = cookie;
  out['x-forwarded-for'] = from.remoteAddress;
  out['x-forwarded-proto'] = from.scheme;
  out['x-forwarded-host'] = h.host ?? '';
  out['x-forwarded-prefix'] = from.prefix;
  for (const k in from.appHeaders) out[k] = from.appHeaders[k];
  return out;
}

/** The app's response headers (raw name/value pairs) for the client: hop-by-hop removed, cookies kept to the app's own host. */
export function responseHeaders(raw: ReadonlyArray<string | Buffer>): OutgoingHttpHeaders {
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

/** A response head as raw HTTP/1.1 text, for answers written on an upgraded socket. */
export function rawHead(statusLine: string, headers: OutgoingHttpHeaders): string {
  let head = `${statusLine}\r\n`;
  for (const k in headers) for (const v of [headers[k] ?? []].flat()) head += `${k}: ${String(v)}\r\n`;
  return head;
}

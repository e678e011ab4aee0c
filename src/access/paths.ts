import { hostName, isValidName } from '../domain/index.js';

/** A workspace address taken from a proxied request. */
export interface WorkspaceAddress {
  team: string;
  name: string;
}

/** `/w/<team>/<ws>` (no trailing slash): the prefix a workspace's app is served under. */
export function prefixOf(a: WorkspaceAddress): string {
  return `/w/${a.team}/${a.name}`;
}

/** `<ws>--<team>.<appsDomain>`: the host a workspace is served on when origins are isolated. */
export function appHost(a: WorkspaceAddress, appsDomain: string): string {
  return `${a.name}--${a.team}.${appsDomain}`;
}

/**
 * The workspace a host names, for hosts of the form `<ws>--<team>.<appsDomain>`
 * (names never contain `--`, so the split is unambiguous); undefined for any
 * other host, such as the portal's.
 */
export function workspaceOfHost(host: string | undefined, appsDomain: string): WorkspaceAddress | undefined {
  const name = hostName(host);
  const suffix = `.${appsDomain}`;
  if (!name.endsWith(suffix)) return undefined;
  const label = name.slice(0, -suffix.length);
  const sep = label.indexOf('--');
  if (sep === -1 || label.includes('.')) return undefined;
  const a = { name: label.slice(0, sep), team: label.slice(sep + 2) };
  return isValidName(a.name) && isValidName(a.team) ? a : undefined;
}

export type PathCheck = { ok: true; workspace: WorkspaceAddress } | { ok: false; reason: string };

const ENCODED_SEPARATOR = /%(2f|5c|00)/i;
const DOUBLE_ENCODED = /%[0-9a-f]{2}/i;

/**
 * Checks a raw request path (as sent, before any decoding) for `/w/<team>/<ws>/…`
 * and refuses anything that could address something outside that prefix once
 * an upstream decodes or normalizes it: dot segments, plain or encoded
 * (`..`, `%2e%2e`, `.%2e`), encoded slashes and backslashes (`%2f`, `%5c`),
 * literal backslashes, empty segments (`//`), NUL, malformed escapes, and
 * escapes that decode to another escape (`%252e`). The query string is not
 * part of the path and is not checked.
 */
export function checkPath(rawUrl: string): PathCheck {
  const q = rawUrl.indexOf('?');
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
  if (!path.startsWith('/w/')) return { ok: false, reason: 'not a workspace path' };
  if (path.includes('\\')) return { ok: false, reason: 'backslash in path' };
  if (ENCODED_SEPARATOR.test(path)) return { ok: false, reason: 'encoded separator in path' };
  const segments = path.slice(1).split('/');
  // the last segment may be empty (a trailing slash); no other may
  for (let i = 0; i < segments.length; i++) {
    const raw = segments[i]!;
    if (raw === '' && i !== segments.length - 1) return { ok: false, reason: 'empty segment in path' };
    let decoded: string;
    try {
      decoded = raw.includes('%') ? decodeURIComponent(raw) : raw;
    } catch {
      return { ok: false, reason: 'malformed escape in path' };
    }
    if (decoded === '.' || decoded === '..') return { ok: false, reason: 'dot segment in path' };
    if (decoded !== raw && DOUBLE_ENCODED.test(decoded)) return { ok: false, reason: 'double-encoded path' };
  }
  const team = segments[1];
  const name = segments[2];
  if (!team || !name || !isValidName(team) || !isValidName(name)) return { ok: false, reason: 'no workspace in path' };
  return { ok: true, workspace: { team, name } };
}


/**
 * Names of users, teams and workspaces: DNS-1123 labels of 2–32 characters.
 * A double hyphen is reserved because workspace origins are
 * `<workspace>--<team>.<apps-domain>` and must split unambiguously.
 */
export const NAME_PATTERN = '^(?!.*--)[a-z][a-z0-9-]{0,30}[a-z0-9]$';
export const NAME_RULE =
  "2–32 characters: lowercase letters, digits and single '-', starting with a letter and ending with a letter or digit";

const NAME_RE = new RegExp(NAME_PATTERN);

export function isValidName(name: string): boolean {
  return NAME_RE.test(name);
}

/** A workspace reference as people type it: `team/ws`, `team.ws`, `atrium.team.ws` or a bare `ws`. */
export interface WorkspaceRef {
  team: string | undefined;
  workspace: string;
}

export function parseWorkspaceRef(ref: string): WorkspaceRef | undefined {
  let parts: string[];
  if (ref.includes('/')) parts = ref.split('/');
  else if (ref.startsWith('atrium.')) parts = ref.slice('atrium.'.length).split('.');
  else parts = ref.split('.');
  if (parts.length === 1 && isValidName(parts[0]!)) return { team: undefined, workspace: parts[0]! };
  if (parts.length === 2 && isValidName(parts[0]!) && isValidName(parts[1]!)) {
    return { team: parts[0], workspace: parts[1]! };
  }
  return undefined;
}

/**
 * Turns an SSO identity (an email or an arbitrary subject) into a username
 * candidate: the local part of an email, lowercased, with every run of other
 * characters folded into one '-'. Returns undefined when nothing usable is left.
 */
export function usernameFromIdentity(identity: string): string | undefined {
  const local = identity.includes('@') ? identity.slice(0, identity.indexOf('@')) : identity;
  let name = local
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .replace(/-+$/, '');
  if (name.length > 28) name = name.slice(0, 28).replace(/-+$/, '');
  if (name.length === 1) name = `${name}-u`;
  return isValidName(name) ? name : undefined;
}

/** The n-th alternative for a taken username: `jane`, `jane-2`, `jane-3` … */
export function usernameWithSuffix(base: string, n: number): string {
  return n <= 1 ? base : `${base.slice(0, 32 - String(n).length - 1)}-${n}`;
}

/** The host name of a Host header, lower-cased, without the port (an IPv6 literal keeps its brackets). */
export function hostName(host: string | undefined): string {
  if (!host) return '';
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.indexOf(':');
  return colon === -1 ? h : h.slice(0, colon);
}

/** Whether a host name (from `hostName`) is an IP address rather than a DNS name. */
export function isIpLiteral(name: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(name) || /^\[[0-9a-f:.]+\]$/.test(name);
}

/** Host names that always mean this machine: `localhost`, `*.localhost`, 127.0.0.0/8 and [::1]. Browsers treat them as secure contexts even over plain HTTP. */
export function isLoopbackName(name: string): boolean {
  return name === 'localhost' || name.endsWith('.localhost') || /^127(\.\d{1,3}){3}$/.test(name) || name === '[::1]';
}

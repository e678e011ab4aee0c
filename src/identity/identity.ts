import { BlockList, isIPv4, isIPv6 } from 'node:net';
import {
  Conflict,
  Forbidden,
  InvalidInput,
  Unauthenticated,
  usernameFromIdentity,
  usernameWithSuffix,
  type Quota,
  type Subject,
} from '../domain/index.js';
import type { Store, User } from '../store/index.js';
import { createAccountBackoff, createKnownAddresses, createRateLimiter } from './rate-limit.js';
import { burnPasswordCheck, generatePassword, hashPassword, randomSecret, sha256, verifyPassword } from './secrets.js';
import { mintToken, parseToken, tokenMatches } from './tokens.js';
import type { AllowList } from '../config/index.js';
import { allowed, type OidcIdentity } from './oidc.js';

/** A sign-in the allow-list refused: the person sees why, and the audit log has a row. */
export class SignInRefused extends Forbidden {
  constructor(message: string) {
    super(message, 'sign_in_refused');
  }
}

export interface IdentityOptions {
  store: Store;
  sessionTtlSeconds: number;
  loginAttempts: number;
  loginWindowSeconds: number;
  /** the longest an account is closed to password checks after repeated failures from anywhere */
  loginBackoffMaxSeconds: number;
  /** trusted single sign-on header (lowercase), accepted only from `trustedProxies` */
  header?: string | undefined;
  headerPrefix?: string;
  trustedProxies?: string[];
  /** who the trusted header may sign in; everyone when unset */
  headerAllow?: AllowList | undefined;
  defaultQuota: Quota;
  now?: () => number;
}

/** How a request proved who it is. */
export interface Authenticated {
  user: User;
  subject: Extract<Subject, { kind: 'user' }>;
  /** `ssh-key`: a signature with a registered SSH key, at the SSH gateway */
  via: 'session' | 'token' | 'header' | 'ssh-key';
  /** hash of the session id, when via session */
  sessionId?: string;
  /** token id, when via token */
  tokenId?: string;
}

/** What the identity layer reads from a request: nothing framework-specific. */
export interface Credentials {
  remoteAddress: string;
  authorization?: string | undefined;
  sessionCookie?: string | undefined;
  headers: Record<string, string | string[] | undefined>;
}

const TOUCH_EVERY_MS = 60_000;
/** How long an authenticated token is kept without reading it again: long while other control planes' changes are heard as they happen, short otherwise. */
const TOKEN_CACHE_MS = 2_000;
const TOKEN_CACHE_LIVE_MS = 60_000;

function normalizeAddress(addr: string): string {
  return addr.startsWith('::ffff:') && isIPv4(addr.slice(7)) ? addr.slice(7) : addr;
}

function buildBlockList(entries: string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [addr, bits] = entry.split('/');
    const type = isIPv6(addr!) ? 'ipv6' : 'ipv4';
    if (!isIPv4(addr!) && !isIPv6(addr!)) throw new InvalidInput(`auth.trustedProxies: ${entry} is not an IP address or CIDR range`);
    if (bits === undefined) list.addAddress(addr!, type);
    else list.addSubnet(addr!, Number(bits), type);
  }
  return list;
}

export function createIdentity(opts: IdentityOptions) {
  const { store } = opts;
  const now = opts.now ?? Date.now;
  const trusted = buildBlockList(opts.trustedProxies ?? []);
  const perUser = createRateLimiter({ attempts: opts.loginAttempts, windowSeconds: opts.loginWindowSeconds, now });
  // One address may front many people (a NAT, the SSO proxy), so it gets more room than one account.
  const perAddress = createRateLimiter({ attempts: opts.loginAttempts * 10, windowSeconds: opts.loginWindowSeconds, now });
  // Rotating addresses gets past both of the above; the account itself backs off, except where its owner signed in before.
  const perAccount = createAccountBackoff({ free: opts.loginAttempts, maxSeconds: opts.loginBackoffMaxSeconds, windowSeconds: opts.loginWindowSeconds, now });
  const knownAddresses = createKnownAddresses({ keepSeconds: 30 * 86400, perAccount: 16, now });

  function isTrustedProxy(address: string): boolean {
    const a = normalizeAddress(address);
    return trusted.check(a, isIPv6(a) ? 'ipv6' : 'ipv4');
  }

  /**
   * Recently authenticated tokens, so the hot path skips two queries. Any
   * change to users, tokens or memberships in this process clears it at once;
   * other control planes on a PostgreSQL database announce theirs (LISTEN/NOTIFY), and
   * without that announcement (SQLite; the listening connection down) entries last TOKEN_CACHE_MS.
   */
  const tokenCache = new Map<string, { at: number; auth: Authenticated; secretHash: string; expiresAt: number | null }>();
  store.onAccessChange(() => tokenCache.clear());

  async function subjectFor(user: User): Promise<Authenticated['subject']> {
    return { kind: 'user', id: user.id, username: user.username, admin: user.admin, roles: await store.users.roles(user.id) };
  }

  /**
   * Registers a user seen for the first time through single sign-on: the
   * username comes from the email's local part, with a numeric suffix when
   * it is taken; the external subject is kept to recognise them next time.
   */
  async function registerExternal(subject: string, hint: { name?: string | null; email?: string | null; displayName?: string } = {}): Promise<User> {
    const base = usernameFromIdentity(hint.name ?? hint.email ?? subject) ?? usernameFromIdentity(subject) ?? 'user';
    const email = hint.email !== undefined ? hint.email : subject.includes('@') ? subject : null;
    for (let n = 1; n < 1000; n++) {
      const username = usernameWithSuffix(base, n);
      try {
        return await store.users.create(
          { username, externalSubject: subject, email, ...(hint.displayName ? { displayName: hint.displayName } : {}) },
          opts.defaultQuota,
        );
      } catch (err) {
        if (!(err instanceof Conflict)) throw err;
        const existing = await store.users.byExternalSubject(subject);
        if (existing) return existing; // registered concurrently by another request
      }
    }
    throw new Conflict(`cannot find a free username for ${subject}`);
  }

  async function fromHeader(value: string): Promise<User> {
    let subject = value.trim();
    if (opts.headerPrefix && subject.startsWith(opts.headerPrefix)) subject = subject.slice(opts.headerPrefix.length);
    if (subject.length === 0 || subject.length > 320 || /[\u0000-\u001f\u007f]/.test(subject)) {
      throw new Unauthenticated('the single sign-on header holds no usable identity');
    }
    const known = await store.users.byExternalSubject(subject);
    if (known) return known;
    if (!allowed(opts.headerAllow, { subject, email: subject.includes('@') ? subject.toLowerCase() : null, groups: [] })) {
      throw new SignInRefused(`${subject} may not sign in to Atrium (auth.headerAllow)`);
    }
    return registerExternal(subject);
  }

  /**
   * The person an OpenID provider signed in: known by issuer and subject
   * (never by email alone: a local account with the same email stays a
   * separate account), registered with their personal team the first time;
   * refused unless the provider's allow-list lets them in; their
   * memberships brought in line with the provider's group mapping.
   */
  async function signInOidc(who: OidcIdentity, provider: { allow: AllowList | undefined; groups: Record<string, { team: string; role: 'viewer' | 'editor' | 'owner' }> }): Promise<User> {
    if (!allowed(provider.allow, who)) throw new SignInRefused(`${who.email ?? who.subject} may not sign in with ${who.provider}`);
    const key = `oidc:${who.issuer}#${who.subject}`;
    const user = (await store.users.byExternalSubject(key)) ?? (await registerExternal(key, { name: who.preferredUsername ?? who.email?.split('@')[0] ?? who.subject, email: who.email, displayName: who.name }));
    if (user.disabled) throw new Forbidden('this account is disabled', 'account_disabled');
    const wanted = new Map<string, { role: 'viewer' | 'editor' | 'owner'; group: string }>();
    const rank = { viewer: 0, editor: 1, owner: 2 } as const;
    for (const g of who.groups) {
      const m = provider.groups[g];
      if (m && (!wanted.has(m.team) || rank[m.role] > rank[wanted.get(m.team)!.role])) wanted.set(m.team, { role: m.role, group: g });
    }
    await store.sso.syncGroups(user.id, who.provider, wanted);
    return user;
  }

  return {
    isTrustedProxy,
    signInOidc,

    /**
     * Resolves a request's credentials: bearer token, then session cookie, then
     * the trusted header (only from a trusted proxy address). Returns undefined
     * for an anonymous request; throws Unauthenticated for bad credentials.
     */
    async authenticate(c: Credentials): Promise<Authenticated | undefined> {
      const at = now();
      if (c.authorization) {
        const m = /^Bearer\s+(\S+)$/i.exec(c.authorization);
        const parsed = m ? parseToken(m[1]!) : undefined;
        if (!parsed) throw new Unauthenticated('malformed Authorization header; expected "Bearer atr_…"');
        const cached = tokenCache.get(parsed.id);
        if (cached && at - cached.at < (store.accessNoticesLive() ? TOKEN_CACHE_LIVE_MS : TOKEN_CACHE_MS) && (cached.expiresAt === null || cached.expiresAt > at) && tokenMatches(parsed.secret, cached.secretHash)) {
          return cached.auth;
        }
        const found = await store.credentials.tokens.withUser(parsed.id);
        const token = found?.token;
        if (!found || !token || !tokenMatches(parsed.secret, token.secretHash) || token.revokedAt !== null) {
          throw new Unauthenticated('invalid or revoked token');
        }
        if (token.expiresAt !== null && token.expiresAt <= at) throw new Unauthenticated('token expired');
        const user = found.user;
        if (user.disabled) throw new Unauthenticated('account disabled');
        if (token.lastUsedAt === null || at - token.lastUsedAt > TOUCH_EVERY_MS) await store.credentials.tokens.used(token.id, at);
        const auth: Authenticated = { user, subject: { kind: 'user', id: user.id, username: user.username, admin: user.admin, roles: found.roles }, via: 'token', tokenId: token.id };
        if (tokenCache.size > 10_000) tokenCache.clear();
        tokenCache.set(token.id, { at, auth, secretHash: token.secretHash, expiresAt: token.expiresAt });
        return auth;
      }
      if (c.sessionCookie) {
        const id = sha256(c.sessionCookie);
        const session = await store.credentials.sessions.get(id);
        if (session && session.expiresAt > at) {
          const user = await store.users.get(session.userId);
          if (user && !user.disabled) {
            if (at - session.lastSeenAt > TOUCH_EVERY_MS) await store.credentials.sessions.seen(id, at);
            return { user, subject: await subjectFor(user), via: 'session', sessionId: id };
          }
        }
        // An expired or unknown cookie falls through: the SSO header, if any, may still sign the person in.
      }
      if (opts.header) {
        const value = c.headers[opts.header];
        if (typeof value === 'string' && value !== '' && isTrustedProxy(c.remoteAddress)) {
          const user = await fromHeader(value);
          if (user.disabled) throw new Unauthenticated('account disabled');
          return { user, subject: await subjectFor(user), via: 'header' };
        }
      }
      return undefined;
    },

    /**
     * Re-reads what an earlier authentication rests on (the session or token
     * still valid, the account still enabled, current team roles), for
     * credentials derived from it such as a workspace's app cookie.
     */
    async recheck(auth: Authenticated): Promise<Authenticated | undefined> {
      const at = now();
      let user: User | undefined;
      if (auth.via === 'session') {
        const session = auth.sessionId === undefined ? undefined : await store.credentials.sessions.get(auth.sessionId);
        if (!session || session.expiresAt <= at) return undefined;
        user = await store.users.get(session.userId);
      } else if (auth.via === 'token') {
        const found = auth.tokenId === undefined ? undefined : await store.credentials.tokens.withUser(auth.tokenId);
        if (!found || found.token.revokedAt !== null || (found.token.expiresAt !== null && found.token.expiresAt <= at)) return undefined;
        if (found.user.disabled) return undefined;
        return { ...auth, user: found.user, subject: { kind: 'user', id: found.user.id, username: found.user.username, admin: found.user.admin, roles: found.roles } };
      } else {
        user = await store.users.get(auth.user.id);
      }
      if (!user || user.disabled) return undefined;
      return { ...auth, user, subject: await subjectFor(user) };
    },

    /**
     * Checks a username and password, with rate limiting per account and
     * address, per address, and per account with a growing backoff. A
     * refused attempt is refused before the password is looked at, right or
     * wrong, and reads the same for accounts that do not exist.
     */
    async checkPassword(username: string, password: string, address: string): Promise<User> {
      const keys = [`${username}|${address}`];
      const addressKeys = [address];
      const known = knownAddresses.has(username, address);
      perUser.check(keys);
      perAddress.check(addressKeys);
      if (!known) perAccount.check(username);
      const user = await store.users.byUsername(username);
      const ok = user?.passwordHash ? await verifyPassword(user.passwordHash, password) : (await burnPasswordCheck(password), false);
      if (!ok || !user) {
        perUser.fail(keys);
        perAddress.fail(addressKeys);
        if (!known) perAccount.fail(username);
        throw new Unauthenticated('wrong username or password');
      }
      if (user.disabled) throw new Forbidden('this account is disabled', 'account_disabled');
      perUser.succeed(keys);
      perAccount.succeed(username);
      knownAddresses.add(username, address);
      return user;
    },

    /**
     * SSH sign-ins that fail, counted per source address by the same limiter
     * as password logins: `check` throws RateLimited once an address has
     * used up its attempts, `fail` counts one refused connection.
     */
    sshAttempts: {
      check: (address: string) => perAddress.check([normalizeAddress(address)]),
      fail: (address: string) => perAddress.fail([normalizeAddress(address)]),
    },

    /** Starts a browser session; returns the cookie value (the only place the secret exists). */
    async startSession(user: User, address: string, userAgent: string, provider?: string): Promise<string> {
      const secret = randomSecret(32);
      await store.credentials.sessions.create({ idHash: sha256(secret), userId: user.id, ttlSeconds: opts.sessionTtlSeconds, ip: address, userAgent, provider });
      return secret;
    },

    /** Ends a browser session; says which identity provider it was signed in with, if any (its session may want ending too). */
    async endSession(sessionId: string): Promise<{ provider: string | null }> {
      const session = await store.credentials.sessions.get(sessionId);
      await store.credentials.sessions.remove(sessionId);
      return { provider: session?.provider ?? null };
    },

    /** Creates an API token; the returned `token` is shown once and never stored. */
    async issueToken(user: User, name: string, expiresInSeconds: number | null) {
      const minted = mintToken();
      const record = await store.credentials.tokens.create({
        id: minted.id,
        userId: user.id,
        name,
        secretHash: minted.secretHash,
        expiresAt: expiresInSeconds === null ? null : now() + expiresInSeconds * 1000,
      });
      return { record, token: minted.token };
    },

    /** Creates the first admin when the database has no users; returns the password if it was generated. */
    async bootstrapAdmin(username: string, password: string | undefined): Promise<{ username: string; password: string | null } | undefined> {
      if ((await store.users.count()) > 0) return undefined;
      const chosen = password ?? generatePassword();
      await store.users.create({ username, passwordHash: await hashPassword(chosen), admin: true }, opts.defaultQuota);
      return { username, password: password === undefined ? chosen : null };
    },

    hashPassword,
    subjectFor,
  };
}

export type Identity = ReturnType<typeof createIdentity>;

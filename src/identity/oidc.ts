import * as client from 'openid-client';
import type { AllowList, OidcProviderConfig } from '../config/index.js';

/** Who an OpenID provider says signed in. */
export interface OidcIdentity {
  provider: string;
  issuer: string;
  /** the provider's `sub`: with the issuer, what the person is known by, never their email alone */
  subject: string;
  /** only when the provider says it is verified */
  email: string | null;
  name: string;
  preferredUsername: string | null;
  groups: string[];
  idToken: string;
}

/** The configured providers, discovered from their issuers. */
export interface Oidc {
  providers: Array<{ name: string; displayName: string }>;
  config(name: string): OidcProviderConfig | undefined;
  /** The provider's authorization URL for a new sign-in, and what the callback must check. */
  begin(name: string, redirectUri: string): Promise<{ url: string; state: string; nonce: string; verifier: string }>;
  /** Redeems the callback's code (PKCE, state and nonce checked, the ID token's signature, issuer, audience and expiry verified). */
  finish(name: string, callbackUrl: URL, checks: { state: string; nonce: string; verifier: string }): Promise<OidcIdentity>;
  /** Where to end the provider's own session too, when it offers an end-session endpoint. */
  endSessionUrl(name: string, idToken: string | undefined, postLogoutRedirectUri: string): string | undefined;
}

/** Raised when the issuer cannot be discovered at start: the server does not start. */
export class OidcDiscoveryFailed extends Error {}

/**
 * Reads each provider's discovery document at start (so a wrong issuer or
 * an unreachable one stops the start with the reason) and returns the
 * sign-in flow over them: authorization code with PKCE, `state` and
 * `nonce`, through `openid-client`.
 */
export async function createOidc(list: OidcProviderConfig[]): Promise<Oidc> {
  const configs = new Map<string, { provider: OidcProviderConfig; config: client.Configuration }>();
  for (const [i, p] of list.entries()) {
    const issuer = new URL(p.issuer);
    try {
      const config = await client.discovery(issuer, p.clientId, undefined, p.clientSecret ? client.ClientSecretBasic(p.clientSecret) : client.None(), {
        timeout: 10,
        ...(issuer.protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : {}),
      });
      // verify the ID token's signature against the issuer's keys even though it comes straight from the token endpoint:
      // TLS alone would let anything between Atrium and the provider (a proxy, a tampering middlebox) name another person
      client.enableNonRepudiationChecks(config);
      configs.set(p.name, { provider: p, config });
    } catch (err) {
      throw new OidcDiscoveryFailed(`auth.oidc[${i}].issuer: cannot discover ${p.issuer}: ${(err as Error).message}`);
    }
  }
  const get = (name: string) => {
    const c = configs.get(name);
    if (!c) throw new Error(`no OpenID provider named ${name}`);
    return c;
  };
  return {
    providers: list.map((p) => ({ name: p.name, displayName: p.displayName })),
    config: (name) => configs.get(name)?.provider,

    async begin(name, redirectUri) {
      const { provider, config } = get(name);
      const verifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const nonce = client.randomNonce();
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: provider.scopes.join(' '),
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
        nonce,
      });
      return { url: url.href, state, nonce, verifier };
    },

    async finish(name, callbackUrl, checks) {
      const { provider, config } = get(name);
      const tokens = await client.authorizationCodeGrant(config, callbackUrl, { pkceCodeVerifier: checks.verifier, expectedState: checks.state, expectedNonce: checks.nonce, idTokenExpected: true });
      const claims = tokens.claims()!;
      // groups and email may come only from the userinfo endpoint
      let info: Record<string, unknown> = { ...claims };
      if (tokens.access_token && (claims[provider.groupsClaim] === undefined || claims.email === undefined) && config.serverMetadata().userinfo_endpoint) {
        info = { ...(await client.fetchUserInfo(config, tokens.access_token, claims.sub)), ...claims };
      }
      const groups = info[provider.groupsClaim];
      const email = typeof info.email === 'string' && info.email_verified === true ? info.email.toLowerCase() : null;
      return {
        provider: provider.name,
        issuer: claims.iss,
        subject: claims.sub,
        email,
        name: typeof info.name === 'string' ? info.name : '',
        preferredUsername: typeof info.preferred_username === 'string' ? info.preferred_username : null,
        groups: Array.isArray(groups) ? groups.filter((g): g is string => typeof g === 'string') : [],
        idToken: tokens.id_token!,
      };
    },

    endSessionUrl(name, idToken, postLogoutRedirectUri) {
      const { config } = get(name);
      if (!config.serverMetadata().end_session_endpoint) return undefined;
      return client.buildEndSessionUrl(config, { post_logout_redirect_uri: postLogoutRedirectUri, ...(idToken ? { id_token_hint: idToken } : {}) }).href;
    },
  };
}

/**
 * Whether an allow-list lets a person in: no list lets everyone in; a list
 * lets in a verified email of a listed domain, a listed group, or a listed
 * subject.
 */
export function allowed(list: AllowList | undefined, who: { subject: string; email: string | null; groups: string[] }): boolean {
  if (!list) return true;
  const domain = who.email?.split('@')[1];
  return (domain !== undefined && list.emailDomains.includes(domain)) || who.groups.some((g) => list.groups.includes(g)) || list.subjects.includes(who.subject);
}

import { createHash, randomBytes, randomInt } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { DomainError, NotFound, parseDuration } from '../../domain/index.js';
import { SignInRefused } from '../../identity/index.js';
import type { ApiDeps } from '../access.js';
import { Redirect, route, TextBody, type RouteDef } from '../router.js';
import { CliLoginBody, CliLoginPoll, CliLoginStarted, Name } from '../schemas.js';
import { userView } from '../views.js';

/** Letters that spell no word and are not misread for each other: what a person compares between terminal and browser. */
const CODE_LETTERS = 'BCDFGHJKLMNPQRSTVWXZ';
const cliCode = () => Array.from({ length: 8 }, (_, i) => (i === 4 ? '-' : '') + CODE_LETTERS[randomInt(CODE_LETTERS.length)]).join('');
const hash = (s: string) => createHash('sha256').update(s).digest('hex');

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A page for a sign-in that did not end signed in: what happened, and the way back. */
function page(status: number, title: string, message: string): TextBody {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escape(title)} · Atrium</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:12vh auto;padding:0 1rem;color:#1d2330}h1{font-size:1.4rem}a{color:#2456c7}</style></head>
<body><h1>${escape(title)}</h1><p>${escape(message)}</p><p><a href="/">Back to Atrium</a></p></body></html>`;
  return new TextBody('text/html; charset=utf-8', html, status);
}

/** Where to go after signing in: a path on this server, nothing else (no open redirect). */
function safeNext(next: string | undefined): string {
  return next && /^\/(?![/\\])[\x21-\x7e]*$/.test(next) ? next : '/';
}

/**
 * Single sign-on with OpenID Connect providers (`auth.oidc`): the sign-in
 * page's buttons lead to `…/login`, which sends the browser to the provider
 * with PKCE, `state` and `nonce`; the provider sends it back to
 * `…/callback`, which redeems the code, checks the allow-list, syncs group
 * memberships and starts a session.
 */
export function ssoRoutes(deps: ApiDeps): RouteDef[] {
  const { store, identity } = deps;
  const callbackUrl = (host: string | undefined, provider: string) => `${deps.publicUrl ?? `${deps.https ? 'https' : 'http'}://${host ?? 'localhost'}`}/api/v1/auth/oidc/${provider}/callback`;
  const provider = (name: string) => {
    const p = deps.oidc?.config(name);
    if (!deps.oidc || !p) throw new NotFound(`identity provider ${name}`);
    return { oidc: deps.oidc, config: p };
  };
  return [
    route({
      method: 'GET',
      url: '/api/v1/auth/providers',
      action: 'auth.providers',
      summary: 'The identity providers people can sign in with, for the sign-in page',
      tag: 'auth',
      public: true,
      response: Type.Object({ items: Type.Array(Type.Object({ name: Type.String(), displayName: Type.String(), login: Type.String({ description: 'where the browser goes to sign in' }) })) }),
      async handler() {
        return { items: (deps.oidc?.providers ?? []).map((p) => ({ ...p, login: `/api/v1/auth/oidc/${p.name}/login` })) };
      },
    }),
    route({
      method: 'POST',
      url: '/api/v1/auth/cli-logins',
      action: 'auth.cli.start',
      summary: '`atrium login --sso`: a code for a person to approve in a browser where they are signed in, and a secret the CLI polls with; approval gives the CLI an API token',
      tag: 'auth',
      public: true,
      body: CliLoginBody,
      response: CliLoginStarted,
      status: 201,
      async handler({ body, request }) {
        const origin = deps.publicUrl ?? `${deps.https ? 'https' : 'http'}://${request.headers.host ?? 'localhost'}`;
        if (body.provider !== undefined) provider(body.provider);
        const code = cliCode();
        const pollSecret = randomBytes(32).toString('base64url');
        const expiresIn = body.expiresIn === undefined ? 30 * 86400 : parseDuration(body.expiresIn);
        await store.sso.putCliLogin({ code, pollHash: hash(pollSecret), name: body.name, expiresIn });
        const approve = `/cli-login?code=${code}`;
        const verifyUrl = body.provider ? `${origin}/api/v1/auth/oidc/${body.provider}/login?next=${encodeURIComponent(approve)}` : `${origin}${approve}`;
        return { code, verifyUrl, pollSecret, expiresInSeconds: 600, intervalSeconds: 2 };
      },
    }),
    route({
      method: 'POST',
      url: '/api/v1/auth/cli-logins/poll',
      action: 'auth.cli.poll',
      summary: 'What became of a CLI sign-in: pending, expired, or approved with its API token (handed over once)',
      tag: 'auth',
      public: true,
      body: Type.Object({ pollSecret: Type.String({ minLength: 20, maxLength: 100 }) }, { additionalProperties: false }),
      response: CliLoginPoll,
      async handler({ body }) {
        const found = await store.sso.takeCliLogin(hash(body.pollSecret));
        if (found.state !== 'approved') return { state: found.state };
        const user = await store.users.get(found.userId);
        if (!user || user.disabled) return { state: 'expired' as const };
        const { token } = await identity.issueToken(user, found.name, found.expiresIn);
        return { state: 'approved' as const, token, user: userView(user) };
      },
    }),
    route({
      method: 'POST',
      url: '/api/v1/auth/cli-logins/approve',
      action: 'auth.cli.approve',
      summary: 'Approve a CLI sign-in by the code it shows (the person signed in here; the CLI then gets a token of theirs)',
      tag: 'auth',
      body: Type.Object({ code: Type.String({ pattern: '^[B-DF-HJ-NP-TV-XZ]{4}-[B-DF-HJ-NP-TV-XZ]{4}$', description: 'the code the terminal shows, e.g. BCDF-GHJK' }) }, { additionalProperties: false }),
      status: 204,
      async handler({ body, user }) {
        if (!(await store.sso.approveCliLogin(body.code, user().user.id))) throw new NotFound(`a waiting CLI sign-in with code ${body.code} (codes last 10 minutes and work once)`);
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/auth/oidc/:provider/login',
      action: 'auth.sso',
      summary: 'Begin signing in with an identity provider: redirects the browser there (authorization code with PKCE)',
      tag: 'auth',
      public: true,
      status: 302,
      params: Type.Object({ provider: Name }, { additionalProperties: false }),
      query: Type.Object({ next: Type.Optional(Type.String({ maxLength: 2048, description: 'a path on this server to return to' })) }, { additionalProperties: false }),
      async handler({ params, query, request }) {
        const { oidc } = provider(params.provider);
        const begun = await oidc.begin(params.provider, callbackUrl(request.headers.host, params.provider));
        await store.sso.putLogin({ state: begun.state, provider: params.provider, nonce: begun.nonce, verifier: begun.verifier, next: safeNext(query.next) });
        return new Redirect(begun.url);
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/auth/oidc/:provider/callback',
      action: 'auth.sso',
      summary: 'Where the identity provider returns the browser: the code is redeemed (state, nonce, PKCE and the ID token checked), the person signed in (302 to where they were going) or refused with an HTML page saying why (400, 403)',
      tag: 'auth',
      public: true,
      status: 302,
      params: Type.Object({ provider: Name }, { additionalProperties: false }),
      query: Type.Object(
        {
          code: Type.Optional(Type.String({ maxLength: 4096 })),
          state: Type.Optional(Type.String({ maxLength: 512 })),
          error: Type.Optional(Type.String({ maxLength: 256 })),
          error_description: Type.Optional(Type.String({ maxLength: 2048 })),
          iss: Type.Optional(Type.String({ maxLength: 2048 })),
          session_state: Type.Optional(Type.String({ maxLength: 512 })),
        },
        { additionalProperties: false },
      ),
      async handler({ params, query, request, ip }) {
        const { oidc, config } = provider(params.provider);
        const audit = (actor: string, actorId: string | null, result: string, status: number, message = '') =>
          store.audit.record({ actorId, actor, action: 'auth.sso', target: `sso/${params.provider}`, result, status, ip, details: message ? { message } : {} });
        if (query.error) {
          await audit('anonymous', null, 'sso_error', 403, query.error);
          return page(403, 'Sign-in did not complete', `${config.displayName} said: ${query.error_description ?? query.error}.`);
        }
        const pending = query.state ? await store.sso.takeLogin(query.state) : undefined;
        if (!pending || pending.provider !== params.provider) {
          await audit('anonymous', null, 'sso_state', 400, 'unknown, used or expired state');
          return page(400, 'This sign-in link is no longer valid', 'It was used already, took too long, or was not started here. Sign in again from the start.');
        }
        const url = new URL(callbackUrl(request.headers.host, params.provider));
        url.search = new URL(request.url, 'http://x').search;
        let who;
        try {
          who = await oidc.finish(params.provider, url, pending);
        } catch (err) {
          await audit('anonymous', null, 'sso_invalid', 400, (err as Error).message);
          return page(400, 'Sign-in failed', `The answer from ${config.displayName} did not check out (${(err as Error).message}). Sign in again.`);
        }
        const actor = who.email ?? `${who.provider}:${who.subject}`;
        try {
          const user = await identity.signInOidc(who, config);
          const secret = await identity.startSession(user, ip, String(request.headers['user-agent'] ?? ''), params.provider);
          await audit(user.username, user.id, 'ok', 302);
          return new Redirect(pending.next, [deps.cookies.set('session', secret, deps.sessionTtlSeconds, request.headers.host)]);
        } catch (err) {
          if (!(err instanceof DomainError)) throw err;
          await audit(actor, null, err.code, err.status, err.message);
          return page(403, err instanceof SignInRefused ? 'You may not sign in to Atrium' : 'Sign-in refused', `${err.message}. Ask an administrator if you should have access.`);
        }
      },
    }),
  ];
}

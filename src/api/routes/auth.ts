import { Type } from '@sinclair/typebox';
import { parseDuration } from '../../domain/index.js';
import type { ApiDeps } from '../access.js';
import { route, type RouteDef } from '../router.js';
import { LoginBody, LoginResult, LogoutView, MeView, PasswordBody, Health } from '../schemas.js';
import { userView } from '../views.js';
import { Forbidden, Unauthenticated } from '../../domain/index.js';

export function authRoutes(deps: ApiDeps): RouteDef[] {
  const { store, identity } = deps;
  return [
    route({
      method: 'GET',
      url: '/healthz',
      action: 'health.read',
      summary: 'Liveness and database reachability',
      tag: 'meta',
      public: true,
      response: Health,
      async handler() {
        await store.users.count();
        return { status: 'ok' as const, database: store.dialect };
      },
    }),
    route({
      method: 'POST',
      url: '/api/v1/auth/login',
      action: 'auth.login',
      summary: 'Sign in with a username and password: sets a session cookie, or returns an API token when `token` is given',
      tag: 'auth',
      public: true,
      body: LoginBody,
      response: LoginResult,
      async handler({ body, ip, request, reply, auditTarget }) {
        auditTarget(`users/${body.username}`);
        const user = await identity.checkPassword(body.username, body.password, ip);
        if (body.token) {
          const expires = body.token.expiresIn === undefined ? null : parseDuration(body.token.expiresIn);
          const { token } = await identity.issueToken(user, body.token.name, expires);
          return { user: userView(user), token };
        }
        const secret = await identity.startSession(user, ip, String(request.headers['user-agent'] ?? ''));
        reply.header('set-cookie', deps.cookies.set('session', secret, deps.sessionTtlSeconds, request.headers.host));
        return { user: userView(user) };
      },
    }),
    route({
      method: 'POST',
      url: '/api/v1/auth/logout',
      action: 'auth.logout',
      summary: "End this session, or revoke the token used for this request; a session signed in with an identity provider that offers an end-session endpoint answers where to end the provider's session too",
      tag: 'auth',
      response: LogoutView,
      async handler({ user, request, reply }) {
        const auth = user();
        let endSession: string | null = null;
        if (auth.via === 'session' && auth.sessionId) {
          const { provider } = await identity.endSession(auth.sessionId);
          // back to the sign-in page once the provider has signed the person out (register it as a post-logout redirect URI)
          const origin = deps.publicUrl ?? `${deps.https ? 'https' : 'http'}://${request.headers.host ?? 'localhost'}`;
          if (provider && deps.oidc?.config(provider)) endSession = deps.oidc.endSessionUrl(provider, undefined, `${origin}/login`) ?? null;
        }
        if (auth.via === 'token' && auth.tokenId) await store.credentials.tokens.revoke(auth.user.id, auth.tokenId);
        reply.header('set-cookie', deps.cookies.set('session', '', 0, request.headers.host));
        return { endSession };
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/me',
      action: 'me.read',
      summary: 'Who I am and the teams I belong to',
      tag: 'me',
      response: MeView,
      async handler({ user }) {
        const auth = user();
        const teams = await store.teams.list({ userId: auth.user.id, limit: 500 });
        return {
          user: userView(auth.user),
          teams: teams.items.map((t) => ({ name: t.name, role: t.role!, personal: t.personalOf === auth.user.id })),
          via: auth.via,
        };
      },
    }),
    route({
      method: 'PUT',
      url: '/api/v1/me/password',
      action: 'me.password',
      summary: 'Change my password (local accounts)',
      tag: 'me',
      body: PasswordBody,
      status: 204,
      response: Type.Null(),
      async handler({ user, body, ip }) {
        const auth = user();
        if (!auth.user.passwordHash) throw new Unauthenticated('this account signs in through single sign-on and has no password');
        await identity.checkPassword(auth.user.username, body.current, ip).catch((err: unknown) => {
          throw err instanceof Unauthenticated ? new Forbidden('the current password is wrong', 'wrong_password') : err;
        });
        await store.users.update(auth.user.id, { passwordHash: await identity.hashPassword(body.password) });
        return null;
      },
    }),
  ];
}

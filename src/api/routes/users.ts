import { can, Conflict, NotFound } from '../../domain/index.js';
import { generatePassword } from '../../identity/index.js';
import type { ApiDeps } from '../access.js';
import { route, type RouteDef } from '../router.js';
import { NewUserBody, Pagination, UserCreated, UserParams, UserPatch, UserView, pageOf } from '../schemas.js';
import { userView } from '../views.js';

export function userRoutes(deps: ApiDeps): RouteDef[] {
  const { store, identity } = deps;
  return [
    route({
      method: 'GET',
      url: '/api/v1/users',
      action: 'user.list',
      admin: true,
      summary: 'All users (admins)',
      tag: 'users',
      query: Pagination,
      response: pageOf(UserView),
      async handler({ query }) {
        const page = await store.users.list({ limit: query.limit, ...(query.cursor ? { cursor: query.cursor } : {}) });
        return { items: page.items.map(userView), nextCursor: page.nextCursor };
      },
    }),
    route({
      method: 'POST',
      url: '/api/v1/users',
      action: 'user.create',
      admin: true,
      target: ({ body }) => `users/${body.username}`,
      summary: 'Create a local user and their personal team (admins); a password is generated when none is given',
      tag: 'users',
      body: NewUserBody,
      response: UserCreated,
      status: 201,
      async handler({ body }) {
        const password = body.password ?? generatePassword();
        const created = await store.users.create(
          {
            username: body.username,
            email: body.email ?? null,
            displayName: body.displayName ?? '',
            admin: body.admin ?? false,
            passwordHash: await identity.hashPassword(password),
          },
          deps.defaultQuota,
        );
        return { user: userView(created), password: body.password === undefined ? password : null };
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/users/:user',
      action: 'user.read',
      summary: 'One user (themselves or an admin)',
      tag: 'users',
      params: UserParams,
      response: UserView,
      async handler({ user, params }) {
        const auth = user();
        const found = await store.users.byUsername(params.user);
        if (!found || !can(auth.subject, 'user.read', { kind: 'user', id: found.id })) throw new NotFound(`user ${params.user}`);
        return userView(found);
      },
    }),
    route({
      method: 'PATCH',
      url: '/api/v1/users/:user',
      action: 'user.update',
      admin: true,
      summary: 'Change a user (admins): make admin, disable (ends sessions, revokes tokens, stops workspaces), reset password',
      tag: 'users',
      params: UserParams,
      body: UserPatch,
      response: UserView,
      async handler({ user, params, body }) {
        const auth = user();
        const found = await store.users.byUsername(params.user);
        if (!found) throw new NotFound(`user ${params.user}`);
        if (found.id === auth.user.id && (body.disabled === true || body.admin === false)) {
          throw new Conflict('you cannot disable yourself or drop your own admin role; ask another admin', 'self_lockout');
        }
        const target = await store.users.update(found.id, {
          ...(body.admin === undefined ? {} : { admin: body.admin }),
          ...(body.disabled === undefined ? {} : { disabled: body.disabled }),
          ...(body.password === undefined ? {} : { passwordHash: await identity.hashPassword(body.password) }),
          ...(body.email === undefined ? {} : { email: body.email }),
          ...(body.displayName === undefined ? {} : { displayName: body.displayName }),
        });
        return userView(target);
      },
    }),
  ];
}

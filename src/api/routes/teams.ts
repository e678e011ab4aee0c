import { Type } from '@sinclair/typebox';
import { NotFound, quotaFromSpec, quotaToSpec, type QuotaSpec } from '../../domain/index.js';
import type { ApiDeps } from '../access.js';
import { route, type RouteDef } from '../router.js';
import {
  MemberBody,
  MemberParams,
  MemberView,
  NewTeamBody,
  QuotaPatch,
  QuotaSpec as QuotaSchema,
  TeamListQuery,
  TeamParams,
  TeamPatch,
  TeamView,
  UsageView,
  pageOf,
} from '../schemas.js';
import { memberView, teamView } from '../views.js';

export function teamRoutes(deps: ApiDeps): RouteDef[] {
  const { store, access } = deps;
  const mergeQuota = (base: QuotaSpec, patch: Partial<QuotaSpec>) => quotaFromSpec({ ...base, ...patch });

  return [
    route({
      method: 'GET',
      url: '/api/v1/teams',
      action: 'team.list',
      summary: 'Teams I belong to (admins: every team with ?all=true)',
      tag: 'teams',
      query: TeamListQuery,
      response: pageOf(TeamView),
      async handler({ user, query }) {
        const auth = user();
        if (query.all) access.requireAdmin(auth);
        const page = await store.teams.list({
          ...(query.all ? {} : { userId: auth.user.id }),
          limit: query.limit,
          ...(query.cursor ? { cursor: query.cursor } : {}),
        });
        return { items: page.items.map((t) => teamView(t, t.role ?? auth.subject.roles.get(t.id) ?? null)), nextCursor: page.nextCursor };
      },
    }),
    route({
      method: 'POST',
      url: '/api/v1/teams',
      action: 'team.create',
      admin: true,
      target: ({ body }) => `teams/${body.name}`,
      summary: 'Create a shared team (admins), optionally with its first owner',
      tag: 'teams',
      body: NewTeamBody,
      response: TeamView,
      status: 201,
      async handler({ body }) {
        const owner = body.owner ? await store.users.byUsername(body.owner) : undefined;
        if (body.owner && !owner) throw new NotFound(`user ${body.owner}`);
        const team = await store.teams.create({
          name: body.name,
          ...(body.displayName ? { displayName: body.displayName } : {}),
          sensitive: body.sensitive ?? false,
          quota: mergeQuota(quotaToSpec(deps.defaultQuota), body.quota ?? {}),
          ...(owner ? { ownerId: owner.id } : {}),
        });
        return teamView(team, null);
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/teams/:team',
      action: 'team.read',
      summary: 'One team',
      tag: 'teams',
      params: TeamParams,
      response: TeamView,
      async handler({ user, params }) {
        const auth = user();
        const team = await access.team(auth, params.team, 'team.read');
        return teamView(team, auth.subject.roles.get(team.id) ?? null);
      },
    }),
    route({
      method: 'PATCH',
      url: '/api/v1/teams/:team',
      action: 'team.update',
      summary: 'Change a team (admins): display name, sensitive flag',
      tag: 'teams',
      params: TeamParams,
      body: TeamPatch,
      response: TeamView,
      async handler({ user, params, body }) {
        const auth = user();
        const team = await access.team(auth, params.team, 'platform.admin');
        const updated = await store.teams.update(team.id, body);
        return teamView(updated, auth.subject.roles.get(team.id) ?? null);
      },
    }),
    route({
      method: 'DELETE',
      url: '/api/v1/teams/:team',
      action: 'team.delete',
      summary: 'Delete a shared team (admins); refused while it has workspaces',
      tag: 'teams',
      params: TeamParams,
      status: 204,
      async handler({ user, params }) {
        const team = await access.team(user(), params.team, 'platform.admin');
        await store.teams.remove(team);
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/teams/:team/members',
      action: 'member.list',
      summary: "A team's members and their roles",
      tag: 'teams',
      params: TeamParams,
      response: Type.Object({ items: Type.Array(MemberView) }),
      async handler({ user, params }) {
        const team = await access.team(user(), params.team, 'team.read');
        return { items: (await store.teams.members(team.id)).map(memberView) };
      },
    }),
    route({
      method: 'PUT',
      url: '/api/v1/teams/:team/members/:user',
      action: 'member.set',
      summary: 'Add a member or change their role (team owners, admins)',
      tag: 'teams',
      params: MemberParams,
      body: MemberBody,
      response: MemberView,
      async handler({ user, params, body }) {
        const team = await access.team(user(), params.team, 'team.members.update');
        const member = await store.users.byUsername(params.user);
        if (!member) throw new NotFound(`user ${params.user}`);
        await store.teams.setMember(team, member.id, body.role);
        const found = (await store.teams.members(team.id)).find((m) => m.userId === member.id)!;
        return memberView(found);
      },
    }),
    route({
      method: 'DELETE',
      url: '/api/v1/teams/:team/members/:user',
      action: 'member.remove',
      summary: 'Remove a member (team owners, admins); a team keeps at least one owner',
      tag: 'teams',
      params: MemberParams,
      status: 204,
      async handler({ user, params }) {
        const team = await access.team(user(), params.team, 'team.members.update');
        const member = await store.users.byUsername(params.user);
        if (!member || !(await store.teams.removeMember(team, member.id))) throw new NotFound(`member ${params.user} of team ${params.team}`);
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/teams/:team/quota',
      action: 'quota.read',
      summary: "A team's quota",
      tag: 'teams',
      params: TeamParams,
      response: QuotaSchema,
      async handler({ user, params }) {
        return quotaToSpec((await access.team(user(), params.team, 'team.read')).quota);
      },
    }),
    route({
      method: 'PATCH',
      url: '/api/v1/teams/:team/quota',
      action: 'quota.update',
      summary: "Change a team's quota (admins); only the given dimensions change. Lowering it below usage stops nothing but refuses new starts",
      tag: 'teams',
      params: TeamParams,
      body: QuotaPatch,
      response: QuotaSchema,
      async handler({ user, params, body }) {
        const team = await access.team(user(), params.team, 'platform.admin');
        const quota = mergeQuota(quotaToSpec(team.quota), body);
        return quotaToSpec((await store.teams.update(team.id, { quota })).quota);
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/teams/:team/usage',
      action: 'usage.read',
      summary: "What a team's workspaces hold now, beside its quota",
      tag: 'teams',
      params: TeamParams,
      response: UsageView,
      async handler({ user, params }) {
        const auth = user();
        const team = await access.team(auth, params.team, 'team.read');
        const usage = await store.teams.usage(team.id);
        return { quota: quotaToSpec(team.quota), usage: quotaToSpec(usage) };
      },
    }),
  ];
}

import { Type } from '@sinclair/typebox';
import { can, Conflict, InvalidInput, NotFound } from '../../domain/index.js';
import type { GpuPool } from '../../store/index.js';
import type { ApiDeps } from '../access.js';
import { route, type RouteDef } from '../router.js';
import {
  ClusterView,
  GrantBody,
  GrantParams,
  GrantView,
  Name,
  NewPoolBody,
  PoolParams,
  PoolPatch,
  PoolView,
  ProfileView,
} from '../schemas.js';
import { poolView, profileView } from '../views.js';

export function catalogueRoutes(deps: ApiDeps): RouteDef[] {
  const { store, access } = deps;
  const CLUSTERS = deps.clusters;

  const teamName = async (id: string | null) => (id ? ((await store.teams.get(id))?.name ?? null) : null);
  const teamId = async (name: string | null | undefined) => {
    if (name === undefined || name === null) return name;
    const team = await store.teams.byName(name);
    if (!team) throw new NotFound(`team ${name}`);
    return team.id;
  };
  const view = async (p: GpuPool) => poolView(p, await store.pools.used(p.id), await teamName(p.ownerTeamId));
  const pool = async (name: string) => {
    const found = await store.pools.byName(name);
    if (!found) throw new NotFound(`GPU pool ${name}`);
    return found;
  };

  return [
    route({
      method: 'GET',
      url: '/api/v1/profiles',
      action: 'profile.list',
      summary: 'Workspace profiles I can use (admins: all, with their team lists)',
      tag: 'catalogue',
      response: Type.Object({ items: Type.Array(ProfileView) }),
      async handler({ user }) {
        const auth = user();
        const admin = can(auth.subject, 'platform.admin', { kind: 'platform' });
        const teamNames = new Set<string>();
        if (!admin) {
          for (const id of auth.subject.roles.keys()) {
            const t = await store.teams.get(id);
            if (t) teamNames.add(t.name);
          }
        }
        const visible = deps.profiles.filter((p) => admin || p.teams === null || p.teams.some((t) => teamNames.has(t)));
        return { items: visible.map((p) => profileView(p, admin)) };
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/profiles/:profile',
      action: 'profile.read',
      summary: 'One profile',
      tag: 'catalogue',
      params: Type.Object({ profile: Name }, { additionalProperties: false }),
      response: ProfileView,
      async handler({ user, params }) {
        const auth = user();
        const p = deps.profiles.find((x) => x.name === params.profile);
        if (!p) throw new NotFound(`profile ${params.profile}`);
        return profileView(p, can(auth.subject, 'platform.admin', { kind: 'platform' }));
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/clusters',
      action: 'cluster.list',
      summary: 'Where workspaces run',
      tag: 'catalogue',
      response: Type.Object({ items: Type.Array(ClusterView) }),
      async handler({ user }) {
        access.require(user(), 'platform.read', { kind: 'platform' });
        return { items: CLUSTERS };
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/gpu-pools',
      action: 'gpupool.list',
      summary: 'GPU pools and how many of each are in use',
      tag: 'gpu-pools',
      response: Type.Object({ items: Type.Array(PoolView) }),
      async handler({ user }) {
        access.require(user(), 'platform.read', { kind: 'platform' });
        const pools = await store.pools.list();
        return { items: await Promise.all(pools.map(async (p) => poolView(p, p.used, await teamName(p.ownerTeamId)))) };
      },
    }),
    route({
      method: 'POST',
      url: '/api/v1/gpu-pools',
      action: 'gpupool.create',
      admin: true,
      target: ({ body }) => `gpu-pools/${body.name}`,
      summary: 'Define a GPU pool (admins): a named set of GPUs of one type, owned by a team or the platform',
      tag: 'gpu-pools',
      body: NewPoolBody,
      response: PoolView,
      status: 201,
      async handler({ body }) {
        const cluster = body.cluster ?? CLUSTERS[0]?.name ?? 'local';
        if (!CLUSTERS.some((c) => c.name === cluster)) {
          throw new InvalidInput(`cluster ${cluster} does not exist; available: ${CLUSTERS.map((c) => c.name).join(', ')}`);
        }
        const created = await store.pools.create({ name: body.name, gpuType: body.gpuType, cluster, size: body.size, ownerTeamId: (await teamId(body.owner)) ?? null });
        return view(created);
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/gpu-pools/:pool',
      action: 'gpupool.read',
      summary: 'One GPU pool',
      tag: 'gpu-pools',
      params: PoolParams,
      response: PoolView,
      async handler({ user, params }) {
        access.require(user(), 'platform.read', { kind: 'platform' });
        return view(await pool(params.pool));
      },
    }),
    route({
      method: 'PATCH',
      url: '/api/v1/gpu-pools/:pool',
      action: 'gpupool.update',
      admin: true,
      summary: 'Resize a GPU pool or change its owner (admins); it cannot shrink below what is in use',
      tag: 'gpu-pools',
      params: PoolParams,
      body: PoolPatch,
      response: PoolView,
      async handler({ params, body }) {
        const found = await pool(params.pool);
        if (body.size !== undefined) {
          const used = await store.pools.used(found.id);
          if (body.size < used) throw new Conflict(`GPU pool ${found.name} has ${used} GPUs in use; it cannot shrink to ${body.size}`, 'pool_in_use');
        }
        const ownerTeamId = await teamId(body.owner);
        return view(await store.pools.update(found, { ...(body.size === undefined ? {} : { size: body.size }), ...(ownerTeamId === undefined ? {} : { ownerTeamId }) }));
      },
    }),
    route({
      method: 'DELETE',
      url: '/api/v1/gpu-pools/:pool',
      action: 'gpupool.delete',
      admin: true,
      summary: 'Remove a GPU pool (admins); refused while workspaces draw on it',
      tag: 'gpu-pools',
      params: PoolParams,
      status: 204,
      async handler({ params }) {
        await store.pools.remove(await pool(params.pool));
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/gpu-pools/:pool/grants',
      action: 'grant.list',
      summary: 'Which teams may use how many GPUs of a pool',
      tag: 'gpu-pools',
      params: PoolParams,
      response: Type.Object({ items: Type.Array(GrantView) }),
      async handler({ user, params }) {
        access.require(user(), 'platform.read', { kind: 'platform' });
        const grants = await store.pools.grants((await pool(params.pool)).id);
        return { items: grants.map((g) => ({ team: g.teamName, limit: g.limit })) };
      },
    }),
    route({
      method: 'PUT',
      url: '/api/v1/gpu-pools/:pool/grants/:team',
      action: 'grant.set',
      admin: true,
      summary: 'Let a team use up to `limit` GPUs of a pool (admins)',
      tag: 'gpu-pools',
      params: GrantParams,
      body: GrantBody,
      response: GrantView,
      async handler({ params, body }) {
        const found = await pool(params.pool);
        const id = (await teamId(params.team))!;
        await store.pools.setGrant(found.id, id, body.limit);
        return { team: params.team, limit: body.limit };
      },
    }),
    route({
      method: 'DELETE',
      url: '/api/v1/gpu-pools/:pool/grants/:team',
      action: 'grant.remove',
      admin: true,
      summary: "Withdraw a team's grant on a pool (admins); running workspaces keep their GPUs until they stop",
      tag: 'gpu-pools',
      params: GrantParams,
      status: 204,
      async handler({ params }) {
        const found = await pool(params.pool);
        const id = (await teamId(params.team))!;
        if (!(await store.pools.removeGrant(found.id, id))) throw new NotFound(`grant of pool ${params.pool} to team ${params.team}`);
      },
    }),
  ];
}

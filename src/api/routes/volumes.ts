import { Type } from '@sinclair/typebox';
import { formatBytes, InvalidInput, NotFound, parseBytes } from '../../domain/index.js';
import type { Volume } from '../../store/index.js';
import { requireAdmin, type ApiDeps } from '../access.js';
import { route, type RouteDef } from '../router.js';
import { Name, NewVolumeBody, VolumeParams, VolumePatch, VolumeView } from '../schemas.js';

/**
 * Team volumes: storage a team's workspaces share, under its storage quota;
 * published read-only to other teams (admins), a volume is a dataset.
 */
export function volumeRoutes(deps: ApiDeps): RouteDef[] {
  const { store, access } = deps;
  const view = async (v: Volume) => ({
    team: v.team,
    name: v.name,
    size: formatBytes(v.sizeBytes),
    sizeBytes: v.sizeBytes,
    readOnlyFor: v.readOnlyFor,
    sharedWith: v.sharedWith.map((t) => t.name),
    mountedBy: await store.volumes.mountedBy(v.id),
    createdAt: new Date(v.createdAt).toISOString(),
  });
  const bytes = (q: string) => {
    const n = parseBytes(q);
    if (n === undefined) throw new InvalidInput(`size: ${JSON.stringify(q)} is not a size this platform can hold`);
    return n;
  };
  const volume = async (teamId: string, team: string, name: string) => {
    const v = await store.volumes.byName(teamId, name);
    if (!v) throw new NotFound(`volume ${team}/${name}`);
    return v;
  };

  return [
    route({
      method: 'GET',
      url: '/api/v1/teams/:team/volumes',
      action: 'volume.list',
      summary: "A team's volumes, and the datasets other teams published to it (read-only there)",
      tag: 'volumes',
      params: Type.Object({ team: Name }, { additionalProperties: false }),
      response: Type.Object({ items: Type.Array(VolumeView), datasets: Type.Array(VolumeView, { description: 'volumes of other teams published to this one, mounted read-only as <team>/<name>' }) }),
      async handler({ user, params }) {
        const team = await access.team(user(), params.team, 'team.read');
        return { items: await Promise.all((await store.volumes.ofTeam(team.id)).map(view)), datasets: await Promise.all((await store.volumes.sharedWith(team.id)).map(view)) };
      },
    }),
    route({
      method: 'POST',
      url: '/api/v1/teams/:team/volumes',
      action: 'volume.create',
      target: ({ params, body }) => `teams/${params.team}/volumes/${body.name}`,
      summary: "Create a volume (team editors): its size counts against the team's storage quota",
      tag: 'volumes',
      params: Type.Object({ team: Name }, { additionalProperties: false }),
      body: NewVolumeBody,
      response: VolumeView,
      status: 201,
      async handler({ user, params, body }) {
        const team = await access.team(user(), params.team, 'volume.manage');
        return view(await store.volumes.create({ teamId: team.id, name: body.name, sizeBytes: bytes(body.size), readOnlyFor: body.readOnlyFor ?? 'none' }));
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/teams/:team/volumes/:volume',
      action: 'volume.read',
      summary: 'One volume',
      tag: 'volumes',
      params: VolumeParams,
      response: VolumeView,
      async handler({ user, params }) {
        const team = await access.team(user(), params.team, 'team.read');
        return view(await volume(team.id, team.name, params.volume));
      },
    }),
    route({
      method: 'PATCH',
      url: '/api/v1/teams/:team/volumes/:volume',
      action: 'volume.update',
      summary: "Grow a volume (checked against the team's storage quota; volumes never shrink), change who reads it (team editors), or publish it read-only to other teams as a dataset (admins); running workspaces see a new size at once, a new access at their next start",
      tag: 'volumes',
      params: VolumeParams,
      body: VolumePatch,
      response: VolumeView,
      async handler({ user, params, body }) {
        const auth = user();
        const team = await access.team(auth, params.team, 'volume.manage');
        let sharedWith: string[] | undefined;
        if (body.sharedWith !== undefined) {
          requireAdmin(auth);
          sharedWith = [];
          for (const name of body.sharedWith) {
            const t = await store.teams.byName(name);
            if (!t) throw new NotFound(`team ${name}`);
            sharedWith.push(t.id);
          }
        }
        const v = await volume(team.id, team.name, params.volume);
        return view(await store.volumes.update(v, {
          ...(body.size === undefined ? {} : { sizeBytes: bytes(body.size) }),
          ...(body.readOnlyFor === undefined ? {} : { readOnlyFor: body.readOnlyFor }),
          ...(sharedWith === undefined ? {} : { sharedWith }),
        }));
      },
    }),
    route({
      method: 'DELETE',
      url: '/api/v1/teams/:team/volumes/:volume',
      action: 'volume.delete',
      summary: 'Delete a volume and its data (team owners); refused while a workspace, running or not, mounts it',
      tag: 'volumes',
      params: VolumeParams,
      status: 204,
      async handler({ user, params }) {
        const team = await access.team(user(), params.team, 'volume.delete');
        await store.volumes.remove(await volume(team.id, team.name, params.volume));
      },
    }),
  ];
}

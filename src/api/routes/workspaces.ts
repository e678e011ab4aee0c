import { Type } from '@sinclair/typebox';
import { Conflict, DomainError, InvalidInput, type Profile } from '../../domain/index.js';
import type { Workspace } from '../../store/index.js';
import type { ApiDeps } from '../access.js';
import { route, type RouteDef } from '../router.js';
import {
  DeleteWorkspaceQuery,
  EventsQuery,
  LogsQuery,
  NewWorkspaceBody,
  Pagination,
  TeamParams,
  WorkspaceListQuery,
  WorkspaceParams,
  WorkspacePatch,
  WorkspaceView,
  pageOf,
} from '../schemas.js';
import { streamEvents, streamMyEvents } from '../sse.js';
import { iso, workspaceView } from '../views.js';
import { workloadSubject } from '../../identity/index.js';
import { WORKLOAD_TOKEN_DIR } from '../../runtime/index.js';
import { restartProfile } from '../restart.js';


export function workspaceRoutes(deps: ApiDeps): RouteDef[] {
  const { store, access } = deps;
  const profileByName = new Map(deps.profiles.map((p) => [p.name, p]));

  const admissionProfile = (ws: Workspace): Profile => restartProfile(ws, profileByName);

  return [
    route({
      method: 'GET',
      url: '/api/v1/workspaces',
      action: 'workspace.list',
      summary: 'Workspaces across the teams I belong to; ?owner=me for mine only; admins: ?all=true for every team',
      tag: 'workspaces',
      query: WorkspaceListQuery,
      response: pageOf(WorkspaceView),
      async handler({ user, query }) {
        const auth = user();
        if (query.all) access.requireAdmin(auth);
        let ownerId: string | undefined;
        if (query.owner === 'me') ownerId = auth.user.id;
        else if (query.owner) ownerId = (await store.users.byUsername(query.owner))?.id ?? 'none';
        return deps.lists.visible({
          ...(query.all ? {} : { userId: auth.user.id }),
          ...(ownerId ? { ownerId } : {}),
          ...(query.holdsGpu ? { holdsGpu: true } : {}),
          limit: query.limit,
          ...(query.cursor ? { cursor: query.cursor } : {}),
        });
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/teams/:team/workspaces',
      action: 'workspace.list',
      summary: "A team's workspaces",
      tag: 'workspaces',
      params: TeamParams,
      query: Pagination,
      response: pageOf(WorkspaceView),
      async handler({ user, params, query }) {
        const team = await access.team(user(), params.team, 'workspace.read');
        return deps.lists.team({ teamId: team.id, limit: query.limit, ...(query.cursor ? { cursor: query.cursor } : {}) });
      },
    }),
    route({
      method: 'POST',
      url: '/api/v1/teams/:team/workspaces',
      action: 'workspace.create',
      summary: 'Create a workspace from a profile (editors and owners); admission checks quota, grants and isolation',
      tag: 'workspaces',
      params: TeamParams,
      body: NewWorkspaceBody,
      response: WorkspaceView,
      status: 201,
      async handler({ user, params, body, auditTarget }) {
        auditTarget(`teams/${params.team}/workspaces/${body.name}`);
        const auth = user();
        const team = await access.team(auth, params.team, 'workspace.create');
        const profile = profileByName.get(body.profile);
        if (!profile) {
          throw new InvalidInput(`profile ${body.profile} does not exist; available: ${deps.profiles.map((p) => p.name).join(', ')}`);
        }
        const ws = await store.workspaces.create({
          teamId: team.id,
          owner: auth.user,
          name: body.name,
          profile,
          shared: body.shared ?? false,
          start: body.start ?? true,
          machines: deps.machines,
          ...(body.volumes ? { volumes: body.volumes } : {}),
        });
        return workspaceView(ws);
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/teams/:team/workspaces/:ws',
      action: 'workspace.read',
      summary: 'One workspace',
      tag: 'workspaces',
      params: WorkspaceParams,
      response: WorkspaceView,
      async handler({ user, params }) {
        const { ws } = await access.workspace(user(), params.team, params.ws, 'workspace.read');
        const w = deps.workload;
        if (!w?.tokensFromAtrium) return workspaceView(ws);
        const held = w.held(ws.id);
        return {
          ...workspaceView(ws),
          identity: {
            issuer: w.identity.issuer,
            subject: workloadSubject(ws.team, ws.name),
            audiences: w.identity.audiences,
            tokenFile: `${WORKLOAD_TOKEN_DIR}/token`,
            tokenExpiresAt: held ? iso(held.expiresAt) : null,
          },
        };
      },
    }),
    route({
      method: 'PATCH',
      url: '/api/v1/teams/:team/workspaces/:ws',
      action: 'workspace.update',
      summary: "Share a workspace with the team's editors, or stop sharing it",
      tag: 'workspaces',
      params: WorkspaceParams,
      body: WorkspacePatch,
      response: WorkspaceView,
      async handler({ user, params, body }) {
        const { ws } = await access.workspace(user(), params.team, params.ws, 'workspace.operate');
        return workspaceView(await store.workspaces.setShared(ws, body.shared));
      },
    }),
    route({
      method: 'DELETE',
      url: '/api/v1/teams/:team/workspaces/:ws',
      action: 'workspace.delete',
      summary: 'Delete a workspace; ?purge=true deletes its home too',
      tag: 'workspaces',
      params: WorkspaceParams,
      query: DeleteWorkspaceQuery,
      status: 204,
      async handler({ user, params, query }) {
        const { ws } = await access.workspace(user(), params.team, params.ws, 'workspace.operate');
        await store.workspaces.remove(ws, query.purge);
      },
    }),
    route({
      method: 'POST',
      url: '/api/v1/teams/:team/workspaces/:ws/start',
      action: 'workspace.start',
      summary: 'Ask a workspace to run; admission checks quota and grants again',
      tag: 'workspaces',
      params: WorkspaceParams,
      response: WorkspaceView,
      async handler({ user, params }) {
        const { ws } = await access.workspace(user(), params.team, params.ws, 'workspace.operate');
        return workspaceView(await store.workspaces.start(ws, admissionProfile(ws), deps.machines));
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/teams/:team/workspaces/:ws/ssh',
      action: 'workspace.ssh',
      summary:
        "The SSH tunnel (people with the connect right, API token only): sent with `Connection: Upgrade` and `Upgrade: ssh`, it answers 101 and then carries raw bytes to a fresh sshd in the running workspace, for an OpenSSH client end to end (`atrium ssh --stdio` is the ProxyCommand that does this). 503 not_running when the workspace is not running. Without the upgrade: 426",
      tag: 'workspaces',
      params: WorkspaceParams,
      response: Type.Null(),
      async handler({ user, params }) {
        await access.workspace(user(), params.team, params.ws, 'workspace.connect');
        throw new DomainError('upgrade_required', 'the SSH tunnel is an HTTP upgrade: send Connection: Upgrade and Upgrade: ssh (`atrium ssh --stdio` does)');
      },
    }),
    route({
      method: 'POST',
      url: '/api/v1/teams/:team/workspaces/:ws/stop',
      action: 'workspace.stop',
      summary: 'Ask a workspace to stop; its home is kept',
      tag: 'workspaces',
      params: WorkspaceParams,
      response: WorkspaceView,
      async handler({ user, params }) {
        const { ws } = await access.workspace(user(), params.team, params.ws, 'workspace.operate');
        return workspaceView(await store.workspaces.stop(ws));
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/teams/:team/workspaces/:ws/events',
      action: 'workspace.events',
      summary: "A workspace's events as Server-Sent Events; resumes after Last-Event-ID",
      tag: 'workspaces',
      params: WorkspaceParams,
      query: EventsQuery,
      stream: true,
      response: Type.String({ description: 'text/event-stream' }),
      async handler({ user, params, query, request, reply }) {
        const { ws } = await access.workspace(user(), params.team, params.ws, 'workspace.read');
        await streamEvents(store, request, reply, { teamId: ws.teamId, teamName: ws.team, workspaceId: ws.id }, query.after);
        return '';
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/teams/:team/workspaces/:ws/logs',
      action: 'workspace.logs',
      summary:
        "The app's output (last lines; ?follow=true keeps streaming), as text, raw: lines Atrium wrote itself start with the byte 0x1E and `[atrium HH:MM:SS] `, which app output never does. Filter control characters before showing it on a terminal",
      tag: 'workspaces',
      params: WorkspaceParams,
      query: LogsQuery,
      stream: true,
      response: Type.String({ description: 'text/plain' }),
      async handler({ user, params, query, request, reply }) {
        const { ws } = await access.workspace(user(), params.team, params.ws, 'workspace.operate');
        if (!deps.logs) throw new Conflict('no runtime is configured, so workspaces have no logs', 'no_runtime');
        const abort = new AbortController();
        request.raw.on('close', () => abort.abort());
        reply.hijack();
        reply.raw.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
        try {
          for await (const chunk of deps.logs.logs(ws.id, { tail: query.tail, follow: query.follow, signal: abort.signal })) {
            if (!reply.raw.write(chunk)) await new Promise((r) => reply.raw.once('drain', r));
          }
        } finally {
          reply.raw.end();
        }
        return '';
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/events',
      action: 'events.read',
      summary:
        'Live events of every team I belong to, as Server-Sent Events. The first is `ready`; fetch what you show after each `ready` (the stream does not resume after Last-Event-ID across teams)',
      tag: 'workspaces',
      stream: true,
      response: Type.String({ description: 'text/event-stream' }),
      async handler({ user, reply }) {
        await streamMyEvents(store, deps.identity, user(), reply);
        return '';
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/teams/:team/events',
      action: 'team.events',
      summary: "Every event of a team's workspaces as Server-Sent Events; resumes after Last-Event-ID",
      tag: 'teams',
      params: TeamParams,
      query: EventsQuery,
      stream: true,
      response: Type.String({ description: 'text/event-stream' }),
      async handler({ user, params, query, request, reply }) {
        const team = await access.team(user(), params.team, 'team.read');
        await streamEvents(store, request, reply, { teamId: team.id, teamName: team.name }, query.after);
        return '';
      },
    }),
  ];
}

import { Type } from '@sinclair/typebox';
import { can, hostName, parseDuration, type Subject } from '../../domain/index.js';
import { parsePublicKey } from '../../identity/index.js';
import type { ApiDeps } from '../access.js';
import { route, type RouteDef } from '../router.js';
import { IdParams, SshAccessView, SshKeyBody, SshKeyView, TokenBody, TokenCreated, TokenView } from '../schemas.js';
import { sshKeyView, tokenView } from '../views.js';

export function meRoutes(deps: ApiDeps): RouteDef[] {
  const { store, identity } = deps;
  return [
    route({
      method: 'GET',
      url: '/api/v1/me/tokens',
      action: 'token.list',
      summary: 'My API tokens (never their secrets)',
      tag: 'me',
      response: Type.Object({ items: Type.Array(TokenView) }),
      async handler({ user }) {
        return { items: (await store.credentials.tokens.list(user().user.id)).map(tokenView) };
      },
    }),
    route({
      method: 'POST',
      url: '/api/v1/me/tokens',
      action: 'token.create',
      summary: 'Create an API token; its secret is in this response only',
      tag: 'me',
      body: TokenBody,
      response: TokenCreated,
      status: 201,
      async handler({ user, body, auditTarget }) {
        const auth = user();
        const expires = body.expiresIn === undefined ? null : parseDuration(body.expiresIn);
        const { record, token } = await identity.issueToken(auth.user, body.name, expires);
        auditTarget(`me/tokens/${record.id}`);
        return { token, info: tokenView(record) };
      },
    }),
    route({
      method: 'DELETE',
      url: '/api/v1/me/tokens/:id',
      action: 'token.revoke',
      summary: 'Revoke one of my API tokens',
      tag: 'me',
      params: IdParams,
      status: 204,
      async handler({ user, params }) {
        await store.credentials.tokens.revoke(user().user.id, params.id);
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/me/ssh-keys',
      action: 'sshkey.list',
      summary: 'My SSH public keys',
      tag: 'me',
      response: Type.Object({ items: Type.Array(SshKeyView) }),
      async handler({ user }) {
        return { items: (await store.credentials.sshKeys.list(user().user.id)).map(sshKeyView) };
      },
    }),
    route({
      method: 'POST',
      url: '/api/v1/me/ssh-keys',
      action: 'sshkey.add',
      summary: 'Register an SSH public key for the SSH gateway',
      tag: 'me',
      body: SshKeyBody,
      response: SshKeyView,
      status: 201,
      async handler({ user, body, auditTarget }) {
        const key = parsePublicKey(body.publicKey);
        const record = await store.credentials.sshKeys.add({
          userId: user().user.id,
          name: body.name ?? (key.comment.slice(0, 64) || key.type),
          publicKey: key.normalized,
          fingerprint: key.fingerprint,
        });
        auditTarget(`me/ssh-keys/${record.id}`);
        return sshKeyView(record);
      },
    }),
    route({
      method: 'GET',
      url: '/api/v1/me/ssh',
      action: 'ssh.read',
      summary: 'How I reach workspaces over SSH: the gateway, how many keys I have, and every workspace I may enter with its host key',
      tag: 'me',
      response: SshAccessView,
      async handler({ user, request }) {
        const auth = user();
        const subject: Subject = auth.subject;
        const keys = await store.credentials.sshKeys.list(auth.user.id);
        const workspaces = (await store.workspaces.ofMember(auth.user.id))
          .filter((w) => can(subject, 'workspace.connect', { kind: 'workspace', teamId: w.teamId, ownerId: w.ownerId, shared: w.shared }))
          .map((w) => {
            const host = deps.ssh?.hostKey(w.id);
            return {
              team: w.team,
              name: w.name,
              phase: w.phase,
              alias: `atrium.${w.team}.${w.name}`,
              gatewayUser: `${w.team}.${w.name}`,
              tunnel: `/api/v1/teams/${w.team}/workspaces/${w.name}/ssh`,
              hostKey: host?.publicKey ?? '',
              fingerprint: host?.fingerprint ?? '',
            };
          });
        return { gateway: deps.ssh?.gateway(hostName(request.headers.host)) ?? null, keys: keys.length, workspaces };
      },
    }),
    route({
      method: 'DELETE',
      url: '/api/v1/me/ssh-keys/:id',
      action: 'sshkey.remove',
      summary: 'Remove one of my SSH keys',
      tag: 'me',
      params: IdParams,
      status: 204,
      async handler({ user, params }) {
        await store.credentials.sshKeys.remove(user().user.id, params.id);
      },
    }),
  ];
}

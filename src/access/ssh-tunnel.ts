import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { can, DomainError, InvalidInput, isValidName, NotFound, Unauthenticated, Unavailable } from '../domain/index.js';
import { sendUpgradeError } from '../http/index.js';
import type { Authenticated, Identity } from '../identity/index.js';
import type { Runtime } from '../runtime/index.js';
import type { Store } from '../store/index.js';
import { resourceOf } from './gate.js';
import type { Tunnels } from './relay.js';
import type { SshSessions } from './ssh-sessions.js';

/** `/api/v1/teams/<team>/workspaces/<ws>/ssh`, the tunnel's address (the API documents it). */
const TUNNEL_PATH = /^\/api\/v1\/teams\/([^/?#]+)\/workspaces\/([^/?#]+)\/ssh\/?(\?.*)?$/;

/**
 * The SSH tunnel (design §4): `atrium ssh --stdio`, an OpenSSH
 * `ProxyCommand`, asks for an HTTP upgrade with the person's API token and
 * then carries raw bytes between their OpenSSH client and a fresh sshd in
 * the workspace: nothing re-framed or masked, OpenSSH end to end. The
 * workspace's sshd checks their key against its `authorized_keys`, which
 * the control plane keeps to the people with the connect right.
 */
export function createSshTunnel(opts: {
  store: Store;
  identity: Identity;
  runtime: Pick<Runtime, 'endpoint'> | undefined;
  sessions: SshSessions;
  tunnels: Tunnels;
  log: { error(obj: unknown, msg?: string): void };
}) {
  const { store, identity, sessions } = opts;

  /** Whether the person may still enter the workspace (access changed while the tunnel is open). */
  async function stillAllowed(userId: string, workspaceId: string): Promise<boolean> {
    const user = await store.users.get(userId);
    const ws = await store.workspaceStates.get(workspaceId);
    if (!user || user.disabled || !ws || ws.desired === 'deleted') return false;
    return can(await identity.subjectFor(user), 'workspace.connect', resourceOf(ws));
  }

  async function open(req: IncomingMessage, socket: Duplex, head: Buffer, m: RegExpExecArray, ip: string): Promise<void> {
    let target = `${m[1]}/${m[2]}`;
    let auth: Authenticated | undefined;
    try {
      // names are plain labels: anything encoded is not one
      const [team, name] = [m[1]!, m[2]!];
      // a token only: a browser cannot send this upgrade, and no cookie may open a shell
      auth = await identity.authenticate({ remoteAddress: ip, authorization: req.headers.authorization, headers: {} });
      if (!auth) throw new Unauthenticated('the SSH tunnel needs an API token (Authorization: Bearer …); `atrium login` makes one');
      if ((req.headers.upgrade ?? '').toLowerCase() !== 'ssh') {
        throw new DomainError('upgrade_required', 'the SSH tunnel is an HTTP upgrade: send Connection: Upgrade and Upgrade: ssh');
      }
      if (!isValidName(team) || !isValidName(name)) throw new InvalidInput(`not a workspace name: ${target}`);
      const t = await store.teams.byName(team);
      const ws = t ? await store.workspaces.byName(t.id, name) : undefined;
      if (!ws || ws.desired === 'deleted' || !can(auth.subject, 'workspace.connect', resourceOf(ws))) throw new NotFound(`workspace ${target}`);
      if (ws.phase !== 'running' || !opts.runtime) {
        throw new Unavailable('not_running', `workspace ${target} is ${ws.phase}`, { phase: ws.phase, desired: ws.desired }, 5);
      }
      target = `${team}/${name}`;
      /** how the tunnel is ended early, once it carries bytes; and whether it was asked to end before */
      const early = { stop: undefined as (() => void) | undefined, asked: false };
      const userId = auth.user.id;
      const session = sessions.open('tunnel', auth, ws, ip, {
        end: () => {
          early.asked = true;
          early.stop?.();
        },
        stillAllowed: () => stillAllowed(userId, ws.id),
      });
      let stream: Duplex;
      try {
        stream = await (await opts.runtime.endpoint(ws.id, 'ssh')).connect();
      } catch (err) {
        session.end(0, 0, 'workspace unreachable');
        throw err instanceof DomainError ? err : new Unavailable('bad_gateway', `workspace ${target} is not answering`);
      }
      if (socket.destroyed) {
        stream.destroy();
        session.end(0, 0, 'client gone');
        return;
      }
      socket.write('HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ssh\r\n\r\n');
      if (head.length > 0) stream.write(head);
      (socket as Socket).setNoDelay?.(true);
      (stream as Socket).setNoDelay?.(true);
      early.stop = await opts.tunnels.connect(socket, stream, (received, sent) => session.end(received, sent));
      if (early.asked) early.stop();
    } catch (err) {
      const refusal = err instanceof DomainError ? err : new Unavailable('bad_gateway', `workspace ${target} could not be reached`);
      if (!(err instanceof DomainError)) opts.log.error({ err, target }, 'SSH tunnel failed');
      if (refusal.code !== 'too_many_connections') {
        sessions.refused('tunnel', { user: auth?.user, target, reason: refusal.code, status: refusal.status, ip });
      }
      sendUpgradeError(socket, refusal, refusal.code === 'unauthenticated' ? { 'www-authenticate': 'Bearer' } : {});
    }
  }

  return {
    /** Whether an upgrade request asks for the tunnel. */
    match(req: IncomingMessage): RegExpExecArray | null {
      return TUNNEL_PATH.exec(req.url ?? '');
    },
    /** Answers a tunnel upgrade that `match` recognised. */
    handle(req: IncomingMessage, socket: Duplex, head: Buffer, m: RegExpExecArray): Promise<void> {
      socket.on('error', () => socket.destroy());
      return open(req, socket, head, m, req.socket.remoteAddress ?? '').catch((err: unknown) => {
        opts.log.error({ err }, 'SSH tunnel failed');
        socket.destroy();
      });
    },
  };
}

export type SshTunnel = ReturnType<typeof createSshTunnel>;

import type { Duplex } from 'node:stream';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import ssh2 from 'ssh2';
import type { AuthContext, Connection, PseudoTtyInfo, ServerChannel, Session, ClientChannel, ParsedKey } from 'ssh2';
import { can, DomainError, parseWorkspaceRef, platformMessage, safeTerminalText, type Subject } from '../domain/index.js';
import { sshFingerprint, type Authenticated, type Identity, type SshKeys } from '../identity/index.js';
import type { Runtime } from '../runtime/index.js';
import type { Store, Workspace } from '../store/index.js';
import { resourceOf } from './gate.js';
import type { SshSession, SshSessions } from './ssh-sessions.js';

const { Server, Client: SshClient, utils, BaseAgent } = ssh2;

/** Key types people may sign in with besides RSA (which signs with SHA-2 only, never SHA-1). */
const SIGNATURE_ALGORITHMS = new Set(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521']);

/** Signed attempts one connection may make (OpenSSH's MaxAuthTries is 6); then it is closed. */
const MAX_AUTH_ATTEMPTS = 10;

/** Connections open at once that have not signed in yet, in all and from one address; more are closed as they arrive. */
const MAX_UNAUTHENTICATED = 256;
const MAX_UNAUTHENTICATED_PER_ADDRESS = 32;

/**
 * Whether a signature algorithm the client names fits the key it sends:
 * Ed25519 and ECDSA keys sign with their own algorithm, RSA keys with
 * SHA-256 or SHA-512 (ssh2 reports those as `ssh-rsa` with the hash).
 */
function acceptableSignature(claimed: string, keyType: string, hash: string | undefined): boolean {
  if (keyType === 'ssh-rsa') return claimed === 'ssh-rsa' && (hash === 'sha256' || hash === 'sha512');
  return hash === undefined && claimed === keyType && SIGNATURE_ALGORITHMS.has(claimed);
}

/** How long a stopped workspace may take to start on connect before the session gives up. */
const START_WAIT_MS = 5 * 60_000;

export interface GatewayOptions {
  store: Store;
  identity: Identity;
  runtime: Pick<Runtime, 'endpoint'> | undefined;
  keys: SshKeys;
  sessions: SshSessions;
  log: { info(obj: unknown, msg?: string): void; warn(obj: unknown, msg?: string): void; error(obj: unknown, msg?: string): void };
  host: string;
  port: number;
  /** from the first byte to a signed-in person */
  handshakeTimeoutMs: number;
  /** nothing either way this long closes the connection (0: never) */
  idleTimeoutSeconds: number;
  /** asks a stopped workspace to run, with the same admission as the API's start; throws a DomainError when refused */
  startWorkspace(ws: Workspace, auth: Authenticated): Promise<void>;
}

/** The workspace an SSH user names: `<ws>` (in the person's own team) or `<team>.<ws>`, as everywhere people write one. */
function parseSshTarget(user: string, username: string): { team: string; name: string } | undefined {
  const ref = parseWorkspaceRef(user);
  return ref ? { team: ref.team ?? username, name: ref.workspace } : undefined;
}

/** What one connection has learned: who signed in and where they go. */
interface ConnectionState {
  ip: string;
  /** signed authentication requests so far */
  attempts: number;
  /** aborts when the connection closes: nothing is started or opened for it after */
  closed: AbortSignal;
  /** the fingerprint of the key it signed in with */
  fingerprint?: string;
  /** closes the connection */
  end(): void;
  /** set once authentication succeeded */
  auth?: Authenticated;
  ws?: Workspace;
  /** the last refusal, recorded once when the connection ends unauthenticated */
  refusal?: { reason: string; user?: { id: string; username: string }; target: string };
  session?: SshSession;
  received: number;
  sent: number;
}

/**
 * An agent that is the connecting person's own: each signing request from
 * the workspace opens an `auth-agent@openssh.com` channel back to their SSH
 * client, which asks their agent. Used only when the profile allows agent
 * forwarding, the person is the workspace's owner and asked for it (`-A`).
 */
class DownstreamAgent extends BaseAgent {
  constructor(private readonly conn: Connection) {
    super();
  }

  getIdentities(cb: (err: Error | undefined, keys?: ParsedKey[]) => void): void {
    cb(new Error('the gateway forwards the agent channel; it does not read keys itself'));
  }

  sign(_pubKey: ParsedKey, _data: Buffer, _options: unknown, cb?: (err: Error | undefined, signature?: Buffer) => void): void {
    cb?.(new Error('the gateway forwards the agent channel; it does not sign itself'));
  }

  /** Opens an agent channel to the person's client (what ssh2's server has no public call for). */
  override getStream(cb: (err: Error | undefined, stream?: Duplex) => void): void {
    const c = this.conn as unknown as {
      _chanMgr: { add(w: unknown): number };
      _protocol: { openssh_authAgent(chan: number, window: number, packet: number): void };
    };
    const wrapper = Object.assign((err: Error | undefined, stream?: Duplex) => cb(err, stream), { type: 'auth-agent@openssh.com' });
    const local = c._chanMgr.add(wrapper);
    if (local === -1) return cb(new Error('no free channels'));
    c._protocol.openssh_authAgent(local, 2 * 1024 * 1024, 32 * 1024);
  }
}

/**
 * The SSH gateway (design §4, §7): people sign in with a public key they
 * registered, name a workspace as the SSH user, and get the same `can()`
 * connect check as the browser proxy. Each connection is bridged to a fresh
 * sshd in the workspace (`endpoint(ws, 'ssh')`, whatever the runtime),
 * signed in with the platform's key for that workspace and checked against
 * its pinned host key: sessions (pty, shell, exec with exit status and
 * signal, env, subsystems such as sftp), local port forwarding, and agent
 * forwarding only where the profile allows it and only for the owner.
 * Remote forwarding, X11 and Unix-socket forwarding are refused.
 */
export function createGateway(opts: GatewayOptions) {
  const { store, identity, keys, sessions, log } = opts;
  const server = new Server({
    hostKeys: [keys.gateway.privateKey],
    ident: 'Atrium',
  });
  const open = new Set<Connection>();
  /** sockets whose person has signed in, and what ends the handshake timer of the others */
  const signedIn = new WeakSet<Socket>();
  const pending = new WeakMap<Socket, () => void>();

  async function resolveTarget(user: string, subjectUser: Authenticated['user'] | undefined): Promise<Workspace | undefined> {
    if (!subjectUser) return undefined;
    const target = parseSshTarget(user, subjectUser.username);
    if (!target) return undefined;
    const team = await store.teams.byName(target.team);
    return team ? store.workspaces.byName(team.id, target.name) : undefined;
  }

  /**
   * One authentication attempt. The signature is checked first, against the
   * key the client names and only with the algorithms that key type takes;
   * asked whether a key would do, the gateway says yes to any such key. So a
   * public key (which anyone may hold) reveals nothing, neither by the answer
   * nor by its timing: whether it is registered, and where its owner may go,
   * is looked up only for someone who holds the private key. Unknown keys,
   * missing workspaces and other people's are then refused alike.
   */
  async function authenticate(ctx: AuthContext, state: ConnectionState): Promise<void> {
    if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
    identity.sshAttempts.check(state.ip);
    const parsed = utils.parseKey(ctx.key.data);
    const key = parsed instanceof Error || Array.isArray(parsed) ? undefined : parsed;
    const signed = Boolean(ctx.signature && ctx.blob);
    const target = ctx.username;
    if (!key || !acceptableSignature(ctx.key.algo, key.type, ctx.hashAlgo)) {
      if (signed) state.refusal = { reason: 'key_type', target };
      return ctx.reject(['publickey']);
    }
    if (!signed) return ctx.accept(); // "would this key do?": any key of a type taken; sign with it
    if (++state.attempts > MAX_AUTH_ATTEMPTS) {
      state.refusal = { reason: 'too_many_attempts', target };
      ctx.reject([]);
      return void state.end();
    }
    // ssh2's verify returns an Error (which is truthy) when it cannot check: only `true` is a good signature
    if (key.verify(ctx.blob!, ctx.signature!, ctx.hashAlgo) !== true) {
      state.refusal = { reason: 'bad_signature', target };
      return ctx.reject(['publickey']);
    }
    const fingerprint = sshFingerprint(ctx.key.data);
    const found = await store.credentials.sshKeys.byFingerprint(fingerprint);
    if (!found || found.user.disabled) {
      state.refusal = { reason: found ? 'account_disabled' : 'unknown_key', target };
      return ctx.reject(['publickey']);
    }
    const subject: Subject = await identity.subjectFor(found.user);
    const ws = await resolveTarget(target, found.user);
    const who = { id: found.user.id, username: found.user.username };
    if (!ws || ws.desired === 'deleted' || !can(subject, 'workspace.connect', resourceOf(ws))) {
      state.refusal = { reason: ws ? 'forbidden' : 'not_found', user: who, target };
      return ctx.reject(['publickey']);
    }
    state.auth = { user: found.user, subject, via: 'ssh-key' };
    state.fingerprint = fingerprint;
    state.ws = ws;
    ctx.accept();
  }

  /**
   * Whether a signed-in connection still holds: its key still registered to
   * its person, their account enabled, the workspace there and theirs to
   * enter. Checked before every new channel, and for every open connection
   * whenever access changes.
   */
  async function stillAllowed(state: ConnectionState): Promise<boolean> {
    const found = await store.credentials.sshKeys.byFingerprint(state.fingerprint!);
    if (!found || found.user.id !== state.auth!.user.id || found.user.disabled) return false;
    const ws = await store.workspaceStates.get(state.ws!.id);
    if (!ws || ws.desired === 'deleted') return false;
    const subject = await identity.subjectFor(found.user);
    if (!can(subject, 'workspace.connect', resourceOf(ws))) return false;
    state.auth = { ...state.auth!, user: found.user, subject };
    state.ws = ws;
    return true;
  }

  /** Waits for a workspace to run, starting it when asked to be stopped and the person may; progress goes to `say`. */
  async function ensureRunning(state: ConnectionState, say: (line: string) => void): Promise<Workspace> {
    const gone = () => new DomainError('not_running', 'the connection closed');
    let ws = (await store.workspaceStates.get(state.ws!.id)) ?? state.ws!;
    if (state.closed.aborted) throw gone();
    if (ws.phase === 'running') return ws;
    const name = `${ws.team}/${ws.name}`;
    if (ws.desired !== 'running') {
      if (!can(state.auth!.subject, 'workspace.operate', resourceOf(ws))) {
        throw new DomainError('not_running', `workspace ${name} is ${ws.phase}, and only its owner or the team's owners may start it`);
      }
      say(`starting workspace ${name}`);
      await opts.startWorkspace(ws, state.auth!);
      if (state.closed.aborted) throw gone();
    } else {
      say(`workspace ${name} is ${ws.phase}; waiting for it to run`);
    }
    const deadline = Date.now() + START_WAIT_MS;
    let lastEvent = 0;
    const events: string[] = [];
    const off = store.events.subscribe((e) => {
      if (e.workspaceId === ws.id && e.id > lastEvent) {
        lastEvent = e.id;
        events.push(e.message);
      }
    });
    try {
      while (Date.now() < deadline) {
        if (state.closed.aborted) throw gone();
        for (const m of events.splice(0)) say(m);
        ws = (await store.workspaceStates.get(ws.id)) ?? ws;
        if (ws.phase === 'running') return ws;
        if (ws.desired === 'deleted') throw new DomainError('not_running', `workspace ${name} is being deleted`);
        if (ws.phase === 'failed' && ws.observedGeneration === ws.generation) {
          throw new DomainError('not_running', `workspace ${name} failed to start: ${ws.reason}`);
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    } finally {
      off();
    }
    throw new DomainError('timeout', `workspace ${name} did not start within ${START_WAIT_MS / 60_000} minutes`);
  }

  function handle(conn: Connection, ip: string): void {
    const closing = new AbortController();
    const state: ConnectionState = { ip, attempts: 0, closed: closing.signal, end: () => conn.end(), received: 0, sent: 0 };
    open.add(conn);
    let upstream: Promise<InstanceType<typeof SshClient>> | undefined;
    let idle: NodeJS.Timeout | undefined;
    const touch = () => {
      if (!opts.idleTimeoutSeconds) return;
      idle?.refresh();
    };
    /** agent forwarding: the profile allows it and the person is the workspace's owner */
    const agentAllowed = () => state.ws?.spec.agentForwarding === true && state.auth?.user.id === state.ws.ownerId;

    conn.on('authentication', (ctx) => {
      authenticate(ctx, state).catch((err: unknown) => {
        if (!(err instanceof DomainError)) log.error({ err }, 'SSH authentication failed');
        state.refusal = { reason: err instanceof DomainError ? err.code : 'error', target: ctx.username };
        ctx.reject([]);
        conn.end();
      });
    });

    /** The bridge to the workspace's sshd, made once per connection (after it runs). */
    function connectUpstream(ws: Workspace): Promise<InstanceType<typeof SshClient>> {
      upstream ??= (async () => {
        if (!opts.runtime) throw new DomainError('not_running', 'this server runs no workspaces (runtime none)');
        if (closing.signal.aborted) throw new DomainError('not_running', 'the connection closed');
        const endpoint = await opts.runtime.endpoint(ws.id, 'ssh');
        const sock = await endpoint.connect();
        const client = new SshClient();
        // every error is handled: ssh2 can report more than one (a refused handshake, then the closed socket)
        client.on('error', (err) => log.warn({ err, workspace: ws.id }, 'SSH connection to the workspace failed'));
        const host = keys.workspaceHost(ws.id).blob;
        await new Promise<void>((resolve, reject) => {
          client.once('ready', resolve);
          client.once('error', reject);
          client.once('close', () => reject(new Error('the workspace closed the SSH connection')));
          client.connect({
            sock,
            username: 'jovyan',
            privateKey: keys.workspaceClient(ws.id).privateKey,
            hostVerifier: (key: Buffer) => key.equals(host),
            readyTimeout: 60_000,
            ...(agentAllowed() ? { agent: new DownstreamAgent(conn) } : {}),
          });
        });
        client.on('close', () => conn.end());
        // the person left while it was being made
        if (closing.signal.aborted) client.end();
        return client;
      })();
      return upstream;
    }

    /** Runs `go` when the connection still holds (see stillAllowed); otherwise refuses and closes the connection. */
    async function checked(go: () => void, refuse: () => void): Promise<boolean> {
      const ok = await stillAllowed(state).catch((err: unknown) => {
        log.error({ err }, 'rechecking an SSH connection failed');
        return false;
      });
      if (ok && !closing.signal.aborted) {
        go();
        return true;
      }
      refuse();
      conn.end();
      return false;
    }

    conn.on('ready', () => {
      const sock = (conn as unknown as { _sock: Socket })._sock;
      signedIn.add(sock);
      pending.get(sock)?.();
      try {
        state.session = sessions.open('gateway', state.auth!, state.ws!, ip, { end: () => conn.end(), stillAllowed: () => stillAllowed(state) });
      } catch (err) {
        // said on the first session; nothing else may be opened
        state.refusal = { reason: 'too_many_connections', user: state.auth!.user, target: `${state.ws!.team}.${state.ws!.name}` };
        const message = (err as Error).message;
        conn.on('session', (accept) => {
          const s = accept();
          const refuse = (acc: (() => ServerChannel) | undefined) => {
            const ch = acc?.();
            if (!ch) return;
            ch.stderr.write(`atrium: ${message}\r\n`);
            ch.exit(1);
            ch.end();
          };
          s.on('exec', (a) => refuse(a));
          s.on('shell', (a) => refuse(a));
          s.on('subsystem', (a) => refuse(a));
        });
        conn.on('tcpip', (_a, reject) => reject());
        setTimeout(() => conn.end(), 5000).unref();
        return;
      }
      if (opts.idleTimeoutSeconds) {
        idle = setTimeout(() => conn.end(), opts.idleTimeoutSeconds * 1000);
        idle.unref();
      }
      // a running workspace gets its bridge now, while the client opens its session
      if (state.ws!.phase === 'running') void connectUpstream(state.ws!).catch(() => undefined);
      conn.on('session', (accept, reject) => {
        void checked(() => bridgeSession(accept()), () => reject());
      });
      conn.on('tcpip', (accept, reject, info) => {
        checked(() => undefined, () => reject())
          .then((ok) => (ok ? ensureRunning(state, () => undefined) : Promise.reject(new Error('no longer allowed'))))
          .then((ws) => connectUpstream(ws))
          .then((up) =>
            up.forwardOut(info.srcIP, info.srcPort, info.destIP, info.destPort, (err, uch) => {
              if (err) return reject();
              const ch = accept();
              pipeChannel(ch, uch, false);
            }),
          )
          .catch(() => reject());
      });
      // remote (-R) and Unix-socket forwarding: the workspace's network is its own
      conn.on('request', (_accept, reject) => reject?.());
    });

    /**
     * Carries one channel both ways, counting bytes and keeping the idle
     * timer alive while anything moves. A session's end keeps SSH's order:
     * its exit status goes out while the channel is open (it arrives before
     * the workspace closes its side), and EOF and close only after every
     * byte of output; a forwarded connection passes each side's EOF on as it
     * comes (half-closed sockets).
     */
    function pipeChannel(ch: ServerChannel, uch: ClientChannel, session: boolean): void {
      ch.on('data', (d: Buffer) => {
        state.received += d.length;
        touch();
      });
      uch.on('data', (d: Buffer) => {
        state.sent += d.length;
        touch();
      });
      ch.pipe(uch);
      uch.pipe(ch, { end: !session });
      uch.stderr.on('data', (d: Buffer) => (state.sent += d.length));
      uch.stderr.pipe(ch.stderr, { end: false });
      const stop = () => {
        uch.close();
        ch.close();
      };
      ch.on('close', () => uch.close());
      uch.on('close', () => {
        // what the workspace wrote to stderr is delivered before the end
        if (ch.stderr.writableLength > 0) ch.stderr.once('drain', () => ch.end());
        else ch.end();
      });
      ch.on('error', stop);
      uch.on('error', stop);
    }

    function bridgeSession(session: Session): void {
      let pty: PseudoTtyInfo | undefined;
      const env: Record<string, string> = {};
      let agent = false;
      let uch: ClientChannel | undefined;
      session.on('pty', (accept, _reject, info) => {
        pty = info;
        accept?.();
      });
      session.on('window-change', (accept, _reject, info) => {
        if (uch) uch.setWindow(info.rows, info.cols, info.height, info.width);
        else if (pty) Object.assign(pty, { rows: info.rows, cols: info.cols, height: info.height, width: info.width });
        accept?.();
      });
      session.on('env', (accept, _reject, info) => {
        env[info.key] = info.val;
        accept?.();
      });
      session.on('auth-agent', (accept, reject) => {
        if (!agentAllowed()) return reject?.();
        agent = true;
        accept?.();
      });
      session.on('signal', (accept, _reject, info) => {
        uch?.signal(info.name);
        accept?.();
      });
      session.on('x11', (_accept, reject) => reject?.());

      /** Accepts at once (the client may close its input before an answer), then opens the same thing in the workspace. */
      const run = (ch: ServerChannel | undefined, open: (up: InstanceType<typeof SshClient>, cb: (err: Error | undefined, c: ClientChannel) => void) => void) => {
        if (!ch) return;
        ch.pause();
        const say = (line: string) => ch.stderr.write(`[atrium] ${safeTerminalText(platformMessage(line) ?? line)}\r\n`);
        ensureRunning(state, say)
          .then((ws) => connectUpstream(ws))
          .then((up) =>
            open(up, (err, c) => {
              if (err) {
                // this channel alone is refused (an unknown subsystem, the workspace's session limit)
                ch.stderr.write(`atrium: the workspace refused: ${safeTerminalText(err.message)}\r\n`);
                ch.exit(1);
                ch.end();
                return;
              }
              uch = c;
              uch.on('exit', (code: number | null, signal?: string, dumped?: boolean, description?: string) => {
                if (code !== null && code !== undefined) ch.exit(code);
                else if (signal) ch.exit(signal.replace(/^SIG/, ''), dumped ?? false, description ?? '');
              });
              pipeChannel(ch, uch, true);
              ch.resume();
            }),
          )
          .catch((err: unknown) => {
            const message = err instanceof DomainError ? err.message : 'the workspace could not be reached';
            if (!(err instanceof DomainError)) log.warn({ err, workspace: state.ws?.id }, 'SSH session to the workspace failed');
            ch.stderr.write(`atrium: ${message}\r\n`);
            ch.exit(1);
            ch.end();
          });
      };
      const forwarded = () => ({ env, ...(agent ? { agentForward: true } : {}) });
      session.on('shell', (accept) => run(accept?.(), (up, cb) => up.shell(pty ?? false, forwarded() as never, cb)));
      session.on('exec', (accept, _reject, info) => run(accept?.(), (up, cb) => up.exec(info.command, { ...forwarded(), ...(pty ? { pty } : {}) }, cb)));
      session.on('subsystem', (accept, _reject, info) => run(accept?.(), (up, cb) => up.subsys(info.name, cb)));
    }

    conn.on('error', () => undefined);
    conn.on('close', () => {
      closing.abort();
      if (idle) clearTimeout(idle);
      open.delete(conn);
      void upstream?.then((c) => c.end(), () => undefined);
      if (state.session) {
        state.session.end(state.received, state.sent);
      } else if (state.refusal) {
        // a refused sign-in (not a scan, a key-scan or a health check that never tried)
        if (state.refusal.reason !== 'rate_limited') identity.sshAttempts.fail(ip);
        const r = state.refusal;
        sessions.refused('gateway', { user: r.user, target: r.target, reason: r.reason, status: r.reason === 'too_many_connections' || r.reason === 'rate_limited' ? 429 : 403, ip });
      } else if (!state.auth) {
        sessions.metrics.refused('gateway', 'no_authentication');
      }
    });
  }

  server.on('connection', (conn, info) => handle(conn, info.ip));
  // The handshake timer covers a connection from its first byte: ssh2 only
  // reports a connection once the client has sent its version line, so one
  // that sends nothing would otherwise stay open for good. Connections not
  // yet signed in are capped as a whole too.
  const raw = (server as unknown as { _srv: NetServer })._srv;
  let unauthenticated = 0;
  const perAddress = new Map<string, number>();
  raw.prependListener('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    const fromThere = perAddress.get(address) ?? 0;
    if (unauthenticated >= MAX_UNAUTHENTICATED || fromThere >= MAX_UNAUTHENTICATED_PER_ADDRESS) {
      sessions.metrics.refused('gateway', 'too_many_unauthenticated');
      return void socket.destroy();
    }
    unauthenticated++;
    perAddress.set(address, fromThere + 1);
    let counted = true;
    const done = () => {
      if (counted) {
        unauthenticated--;
        const left = (perAddress.get(address) ?? 1) - 1;
        if (left <= 0) perAddress.delete(address);
        else perAddress.set(address, left);
      }
      counted = false;
      clearTimeout(timer);
    };
    const timer = setTimeout(() => {
      if (!signedIn.has(socket)) socket.destroy();
    }, opts.handshakeTimeoutMs);
    socket.once('close', done);
    pending.set(socket, done);
  });
  server.on('error', (err: Error) => log.error({ err }, 'SSH gateway error'));

  return {
    /** Starts listening; resolves with the bound port. */
    listen(): Promise<number> {
      return new Promise((resolve, reject) => {
        const onError = (err: NodeJS.ErrnoException) => reject(err);
        server.once('error', onError);
        server.listen(opts.port, opts.host, () => {
          server.off('error', onError);
          resolve((server.address() as AddressInfo).port);
        });
      });
    },
    close(): Promise<void> {
      for (const c of open) c.end();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

export type Gateway = ReturnType<typeof createGateway>;

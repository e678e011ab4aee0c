import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';

/** What a tunnel carried, reported when it ends. */
export type TunnelClosed = (clientToApp: number, appToClient: number) => void;

/** The file descriptor behind a plain (not TLS) socket, or undefined. */
function fdOf(s: Duplex): number | undefined {
  if (!(s instanceof Socket) || s instanceof TLSSocket) return undefined;
  const fd = (s as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/**
 * Takes what Node has already read from a socket and stops it reading more,
 * so everything after stays in the kernel for whoever owns the descriptor
 * next. (Pausing a stream is not enough: Node keeps filling its buffer.)
 * Reading may re-arm the handle, so the stop comes last, before any await.
 */
function hold(s: Duplex): Buffer | null {
  s.pause();
  const chunks: Buffer[] = [];
  for (let c = s.read() as Buffer | null; c !== null; c = s.read() as Buffer | null) chunks.push(c);
  (s as unknown as { _handle?: { readStop?(): void } })._handle?.readStop?.();
  return chunks.length ? Buffer.concat(chunks) : null;
}

/** Undoes `hold`: the socket reads from the kernel again and flows (a hand-off that did not happen). */
function unhold(s: Duplex): void {
  // what Node's own tryReadStart does; resume() alone would not, as the stream still counts a read as pending
  const handle = (s as unknown as { _handle?: { readStart?(): number; reading?: boolean } })._handle;
  if (handle?.readStart) {
    handle.reading = true;
    handle.readStart();
  }
  s.resume();
}

/** Resolves once everything written to `s` has reached the kernel. */
function flushed(s: Duplex): Promise<void> {
  if (s.writableLength === 0) return Promise.resolve();
  return new Promise((resolve) => s.write(Buffer.alloc(0), () => resolve()));
}

export interface TunnelOptions {
  agentPath: string | undefined;
  log: { warn(obj: unknown, msg?: string): void };
  /** a tunnel whose receiver takes none of the bytes waiting for it for this long is closed (0: never) */
  stallSeconds: number;
  /** a tunnel that moves nothing either way for this long is closed (0: never) */
  idleSeconds: number;
}

/** How often piped tunnels are checked for a stalled receiver. */
const SWEEP_MS = 1000;

/**
 * Long-lived byte streams (WebSockets through the proxy) are handed to
 * `atrium-agent relay`, a small C process that moves their bytes with
 * read/write on epoll, so a busy kernel channel or terminal costs the
 * control plane's event loop nothing. Where it cannot (no agent binary, a
 * TLS socket whose bytes only Node can decrypt, the relay gone), the
 * streams are piped in-process. Either way a tunnel whose receiver stops
 * taking bytes, or that carries nothing, is closed after its timeout: each
 * holds buffers and descriptors, and a person can open many.
 */
export function createTunnels(opts: TunnelOptions) {
  let child: ChildProcess | undefined;
  let nextId = 1;
  const waiting = new Map<number, (took: boolean) => void>();
  const open = new Map<number, TunnelClosed>();
  /** piped tunnels: each side, and since when it has waited for its receiver to drain */
  const piped = new Map<Duplex, { sides: Duplex[]; waiting: Array<number | undefined>; end(): void }>();
  let sweep: NodeJS.Timeout | undefined;
  let closing = false;
  /** how many tunnels went each way, for tests and metrics */
  const counts = { relayed: 0, piped: 0 };

  function relayProcess(): ChildProcess | undefined {
    if (child && child.exitCode === null && !child.killed) return child;
    if (closing || !opts.agentPath || !existsSync(opts.agentPath)) return undefined;
    const c = spawn(opts.agentPath, ['relay', '--stall-timeout', String(opts.stallSeconds), '--idle-timeout', String(opts.idleSeconds)], { stdio: ['pipe', 'pipe', 'inherit'] });
    c.on('error', (err) => opts.log.warn({ err }, 'the tunnel relay could not start; piping in-process'));
    c.on('exit', () => {
      if (child === c) child = undefined;
      for (const [id, resolve] of waiting) {
        waiting.delete(id);
        resolve(false);
      }
      // the relay took its connections with it
      for (const [id, done] of open) {
        open.delete(id);
        done(0, 0);
      }
    });
    createInterface({ input: c.stdout }).on('line', (line) => {
      const [what, idText, a, b] = line.split(' ');
      const id = Number(idText);
      if (what === 'took' || what === 'failed') {
        waiting.get(id)?.(what === 'took');
        waiting.delete(id);
      } else if (what === 'closed') {
        open.get(id)?.(Number(a), Number(b));
        open.delete(id);
      }
    });
    c.stdin.on('error', () => undefined);
    child = c;
    return c;
  }

  /** Closes piped tunnels whose receiver has not drained for the stall timeout. */
  function sweepPiped(): void {
    const at = Date.now();
    for (const t of piped.values()) {
      t.sides.forEach((s, i) => {
        if (!s.writableNeedDrain) t.waiting[i] = undefined;
        else if (t.waiting[i] === undefined) t.waiting[i] = at;
        else if (at - t.waiting[i] >= opts.stallSeconds * 1000) t.end();
      });
    }
    if (piped.size === 0 && sweep) {
      clearInterval(sweep);
      sweep = undefined;
    }
  }

  function pipeBoth(client: Duplex, app: Duplex, done: TunnelClosed): () => void {
    let finished = false;
    let up = 0;
    let down = 0;
    const end = () => {
      if (finished) return;
      finished = true;
      piped.delete(client);
      client.destroy();
      app.destroy();
      done(up, down);
    };
    client.on('data', (c: Buffer) => (up += c.length));
    app.on('data', (c: Buffer) => (down += c.length));
    const tunnel = { sides: [client, app], waiting: [undefined, undefined] as Array<number | undefined>, end };
    for (const [i, s] of tunnel.sides.entries()) {
      s.on('error', end);
      s.on('close', end);
      s.on('drain', () => (tunnel.waiting[i] = undefined));
    }
    // every byte either way passes the client's socket: its own inactivity timer is the tunnel's
    if (opts.idleSeconds > 0 && client instanceof Socket) {
      client.setTimeout(opts.idleSeconds * 1000);
      client.on('timeout', end);
    }
    piped.set(client, tunnel);
    if (opts.stallSeconds > 0 && !sweep) {
      sweep = setInterval(sweepPiped, SWEEP_MS);
      sweep.unref();
    }
    counts.piped++;
    client.pipe(app);
    app.pipe(client);
    return end;
  }

  return {
    /**
     * Connects two streams both ways until either ends; `done` gets the bytes
     * each way. Any bytes already read into `client` or `app` are delivered
     * first. Resolves with a function that ends the tunnel early.
     */
    async connect(client: Duplex, app: Duplex, done: TunnelClosed): Promise<() => void> {
      const fa = fdOf(client);
      const fb = fdOf(app);
      const relay = fa !== undefined && fb !== undefined ? relayProcess() : undefined;
      if (!relay) return pipeBoth(client, app, done);
      // what Node has read already goes across first, then the kernel holds everything else
      const early = [hold(client), hold(app)];
      if (early[0]) app.write(early[0]);
      if (early[1]) client.write(early[1]);
      await Promise.all([flushed(client), flushed(app)]);
      if (client.destroyed || app.destroyed) {
        client.destroy();
        app.destroy();
        done(0, 0);
        return () => undefined;
      }
      const id = nextId++;
      const took = await new Promise<boolean>((resolve) => {
        waiting.set(id, resolve);
        relay.stdin!.write(`${id} ${fa} ${fb}\n`);
      });
      // what went across before the hand-off counts too
      const withEarly: TunnelClosed = (a, b) => done(a + (early[0]?.length ?? 0), b + (early[1]?.length ?? 0));
      if (!took) {
        unhold(client);
        unhold(app);
        return pipeBoth(client, app, withEarly);
      }
      counts.relayed++;
      open.set(id, withEarly);
      // the relay holds its own descriptors now; closing ours leaves the connections up
      client.destroy();
      app.destroy();
      return () => {
        if (open.has(id)) relay.stdin!.write(`close ${id}\n`);
      };
    },

    counts,

    /** Tunnels open now (relayed and piped). */
    get size(): number {
      return open.size + piped.size;
    },

    close(): void {
      closing = true;
      if (sweep) clearInterval(sweep);
      for (const s of piped.keys()) s.destroy();
      child?.kill('SIGTERM');
    },
  };
}

export type Tunnels = ReturnType<typeof createTunnels>;

import { randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import pg from 'pg';

/** The PostgreSQL channel on which control planes sharing a database announce access changes. */
const CHANNEL = 'atrium_access';
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30_000;

export interface AccessNotices {
  /** whether changes made by other control planes reach this one as they happen (the listening connection is up) */
  live(): boolean;
  /** tells the other control planes that users, tokens or memberships changed (after the commit) */
  announce(): void;
  close(): Promise<void>;
}

/**
 * Access changes between control planes on one PostgreSQL database, by
 * LISTEN/NOTIFY: each process listens on one connection of its own, and a
 * change committed by any of them clears the others' caches of tokens and
 * roles at once. So those caches can keep entries for long: a revoked
 * token stops working everywhere as soon as the revocation commits. While
 * the listening connection is down (PostgreSQL restarting), `live()` is
 * false, caches are cleared, and the connection is tried again with a
 * growing pause.
 */
export function createAccessNotices(url: string, bus: EventEmitter, query: (text: string, values: unknown[]) => Promise<unknown>): AccessNotices {
  // a process's own notices come back to it too: told apart by this
  const self = randomBytes(8).toString('hex');
  let client: pg.Client | undefined;
  let connected = false;
  let closed = false;
  let retryMs = RETRY_MIN_MS;
  let timer: NodeJS.Timeout | undefined;

  function lost(): void {
    const was = connected;
    connected = false;
    client?.removeAllListeners();
    client?.end().catch(() => undefined);
    client = undefined;
    // whatever changed while nobody listened is unknown: forget what was kept
    if (was) bus.emit('access');
    if (closed || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void listen();
    }, retryMs);
    timer.unref();
    retryMs = Math.min(RETRY_MAX_MS, retryMs * 2);
  }

  async function listen(): Promise<void> {
    const c = new pg.Client({ connectionString: url });
    client = c;
    c.on('error', lost);
    c.on('end', lost);
    c.on('notification', (n) => {
      if (n.channel === CHANNEL && n.payload !== self) bus.emit('access');
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${CHANNEL}`);
      if (client !== c || closed) return;
      connected = true;
      retryMs = RETRY_MIN_MS;
      // changes made before the connection was up are not known either
      bus.emit('access');
    } catch {
      if (client === c) lost();
    }
  }

  void listen();
  return {
    live: () => connected,
    announce() {
      void query('select pg_notify($1, $2)', [CHANNEL, self]).catch(() => undefined);
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      const c = client;
      client = undefined;
      connected = false;
      c?.removeAllListeners();
      await c?.end().catch(() => undefined);
    },
  };
}

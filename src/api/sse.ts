import type { FastifyReply, FastifyRequest } from 'fastify';
import { InvalidInput } from '../domain/index.js';
import type { Authenticated, Identity } from '../identity/index.js';
import type { Store, StoredEvent } from '../store/index.js';
import { eventView } from './views.js';

const HEARTBEAT_MS = 15_000;
const PAGE = 500;
/** A client this far behind is cut off; it reconnects with Last-Event-ID and catches up from the database. */
const MAX_BUFFERED = 1 << 20;

/**
 * Streams committed events as Server-Sent Events: first every stored event
 * after the client's Last-Event-ID (or `?after=`), then live ones, without
 * gaps or repeats, since live events that arrive during catch-up are queued.
 */
export async function streamEvents(
  store: Store,
  request: FastifyRequest,
  reply: FastifyReply,
  scope: { teamId: string; teamName: string; workspaceId?: string },
  after: number | undefined,
): Promise<void> {
  const header = request.headers['last-event-id'];
  let last = after ?? 0;
  if (typeof header === 'string' && header !== '') {
    if (!/^[0-9]{1,15}$/.test(header)) throw new InvalidInput('Last-Event-ID: must be an event id');
    last = Number(header);
  }
  const matches = (e: StoredEvent) => (scope.workspaceId ? e.workspaceId === scope.workspaceId : e.teamId === scope.teamId);

  const res = openStream(reply);
  let closed = false;
  const send = (e: StoredEvent) => {
    if (closed || e.id <= last) return;
    last = e.id;
    res.write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(eventView(e, scope.teamName))}\n\n`);
    if (res.writableLength > MAX_BUFFERED) res.destroy();
  };
  const queued: StoredEvent[] = [];
  let catchingUp = true;
  const unsubscribe = store.events.subscribe((e) => {
    if (!matches(e)) return;
    if (catchingUp) queued.push(e);
    else send(e);
  });
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
  const close = () => {
    closed = true;
    clearInterval(heartbeat);
    unsubscribe();
  };
  res.on('close', close);

  try {
    for (;;) {
      const rows = await store.events.after(scope, last, PAGE);
      rows.forEach(send);
      if (rows.length < PAGE || closed) break;
    }
  } catch (err) {
    res.destroy(err as Error);
    close();
    return;
  }
  catchingUp = false;
  queued.sort((a, b) => a.id - b.id).forEach(send);
}

function openStream(reply: FastifyReply) {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.write('retry: 3000\n\n');
  return res;
}

/** How often the multi-team stream re-reads the viewer's credentials and team memberships (and keeps the connection alive). */
const RECHECK_MS = 10_000;

/**
 * Streams live events of every team the viewer belongs to (the portal's one
 * stream per page), list-then-watch style: the stream first sends `ready`,
 * and a client (re)fetches the state it shows on every `ready`, so nothing
 * between its last fetch and the stream is missed. It does not resume after
 * Last-Event-ID: events of different teams may commit out of id order, so one
 * position cannot say what a client has seen across teams.
 *
 * The viewer's credentials and memberships are re-read every few seconds: a
 * revoked session or disabled account ends the stream, and a team the viewer
 * leaves stops being shown (one joined is shown from the next re-read).
 */
export async function streamMyEvents(store: Store, identity: Identity, auth: Authenticated, reply: FastifyReply): Promise<void> {
  let teams = await teamNames(store, auth.user.id);
  const res = openStream(reply);
  let closed = false;
  const unsubscribe = store.events.subscribe((e) => {
    const team = teams.get(e.teamId);
    if (closed || team === undefined) return;
    res.write(`event: ${e.type}\ndata: ${JSON.stringify(eventView(e, team))}\n\n`);
    if (res.writableLength > MAX_BUFFERED) res.destroy();
  });
  const recheck = setInterval(() => {
    res.write(': keep-alive\n\n');
    void (async () => {
      const current = await identity.recheck(auth);
      if (closed) return;
      if (!current) return res.end();
      teams = await teamNames(store, auth.user.id);
    })().catch(() => res.destroy());
  }, RECHECK_MS);
  res.on('close', () => {
    closed = true;
    clearInterval(recheck);
    unsubscribe();
  });
  res.write(`event: ready\ndata: ${JSON.stringify({ teams: [...teams.values()] })}\n\n`);
}

async function teamNames(store: Store, userId: string): Promise<Map<string, string>> {
  const page = await store.teams.list({ userId, limit: 500 });
  return new Map(page.items.map((t) => [t.id, t.name]));
}

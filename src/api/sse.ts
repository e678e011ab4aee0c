import type { FastifyReply, FastifyRequest } from 'fastify';
import { can, InvalidInput } from '../domain/index.js';
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

/** How often the multi-team stream writes a keep-alive and re-reads the viewer's credentials and teams (they are also re-read at once on every access change). */
const RECHECK_MS = 10_000;

/**
 * Streams live events of every team the viewer belongs to (the portal's one
 * stream per page), list-then-watch style: the stream first sends `ready`,
 * and a client (re)fetches the state it shows on every `ready`, so nothing
 * between its last fetch and the stream is missed. It does not resume after
 * Last-Event-ID: events of different teams may commit out of id order, so one
 * position cannot say what a client has seen across teams.
 *
 * Which teams are shown follows the viewer's current roles through `can()`:
 * whenever users, tokens or memberships change (and every few seconds) the
 * credentials are re-read, so a revoked session or disabled account ends the
 * stream and a team left stops being shown at once.
 */
export async function streamMyEvents(store: Store, identity: Identity, auth: Authenticated, reply: FastifyReply): Promise<void> {
  const names = new Map<string, string>();
  let teams = await visibleTeams(store, auth, names);
  const res = openStream(reply);
  let closed = false;
  const unsubscribe = store.events.subscribe((e) => {
    const team = teams.get(e.teamId);
    if (closed || team === undefined) return;
    res.write(`event: ${e.type}\ndata: ${JSON.stringify(eventView(e, team))}\n\n`);
    if (res.writableLength > MAX_BUFFERED) res.destroy();
  });
  let checking = false;
  let again = false;
  const recheck = async () => {
    if (checking) return void (again = true);
    checking = true;
    try {
      do {
        again = false;
        const current = await identity.recheck(auth);
        if (closed) return;
        if (!current) return stop(true);
        teams = await visibleTeams(store, current, names);
      } while (again && !closed);
    } catch {
      stop(false);
    } finally {
      checking = false;
    }
  };
  const offAccess = store.onAccessChange(() => void recheck());
  const timer = setInterval(() => {
    res.write(': keep-alive\n\n');
    void recheck();
  }, RECHECK_MS);
  function stop(end: boolean) {
    if (closed) return;
    closed = true;
    clearInterval(timer);
    unsubscribe();
    offAccess();
    if (end) res.end();
    else res.destroy();
  }
  res.on('close', () => stop(false));
  res.write(`event: ready\ndata: ${JSON.stringify({ teams: [...teams.values()] })}\n\n`);
}

/** Team id → name of the teams the subject belongs to and may read; names are looked up once per stream. */
async function visibleTeams(store: Store, auth: Authenticated, names: Map<string, string>): Promise<Map<string, string>> {
  const subject = auth.subject;
  if (subject.kind !== 'user') return new Map();
  const out = new Map<string, string>();
  for (const id of subject.roles.keys()) {
    if (!can(subject, 'team.read', { kind: 'team', id })) continue;
    let name = names.get(id);
    if (name === undefined) {
      name = (await store.teams.get(id))?.name;
      if (name === undefined) continue;
      names.set(id, name);
    }
    out.set(id, name);
  }
  return out;
}

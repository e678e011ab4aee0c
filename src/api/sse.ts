import type { FastifyReply, FastifyRequest } from 'fastify';
import { InvalidInput } from '../domain/index.js';
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
  scope: { teamId: string; workspaceId?: string },
  after: number | undefined,
): Promise<void> {
  const header = request.headers['last-event-id'];
  let last = after ?? 0;
  if (typeof header === 'string' && header !== '') {
    if (!/^[0-9]{1,15}$/.test(header)) throw new InvalidInput('Last-Event-ID: must be an event id');
    last = Number(header);
  }
  const matches = (e: StoredEvent) => (scope.workspaceId ? e.workspaceId === scope.workspaceId : e.teamId === scope.teamId);

  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.write('retry: 3000\n\n');

  let closed = false;
  const send = (e: StoredEvent) => {
    if (closed || e.id <= last) return;
    last = e.id;
    res.write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(eventView(e))}\n\n`);
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

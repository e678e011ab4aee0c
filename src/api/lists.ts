import { Worker } from 'node:worker_threads';
import fastJson from 'fast-json-stringify';
import { DomainError, type ErrorCode } from '../domain/index.js';
import type { DatabaseTarget, Store } from '../store/index.js';
import { pageOf, WorkspaceView } from './schemas.js';
import { workspaceView } from './views.js';

/** A response body already written as JSON; `T` is what it holds, so a route's handler stays typed by its response schema. */
export class SerializedJson<T = unknown> {
  declare readonly holds?: T;
  constructor(readonly json: string) {}
}

type PageJson = SerializedJson<{ items: WorkspaceView[]; nextCursor: string | null }>;

export type VisibleQuery = Parameters<Store['workspaces']['listVisible']>[0];
export type TeamQuery = { teamId: string } & Parameters<Store['workspaces']['listTeam']>[1];

/**
 * Reads and writes out pages of workspaces, the API's heaviest reads (a page
 * of 50 is ~27 KB of JSON from ~1,100 database values). Who may see what is
 * decided by the caller and passed in (`userId`, `teamId`); this only reads.
 */
export interface Lists {
  visible(q: VisibleQuery): Promise<PageJson>;
  team(q: TeamQuery): Promise<PageJson>;
  close(): Promise<void>;
}

/** One page to read; the worker's messages add an id. */
export type ListRequest = { kind: 'visible'; q: VisibleQuery } | { kind: 'team'; q: TeamQuery };
type Answer = { id: number; json: string } | { id: number; error: { code?: ErrorCode; message: string; details?: Record<string, unknown> } };

/**
 * Writes a page out from the routes' response schema, as Fastify writes the
 * answers of other routes: only the fields the schema names, and a quarter
 * less CPU than JSON.stringify for a page of 50.
 */
const writePage: (page: { items: unknown[]; nextCursor: string | null }) => string = fastJson(pageOf(WorkspaceView));

/** What one list request does, wherever it runs: read the page, map it to views, write it out. */
export async function readPage(store: Store, r: ListRequest): Promise<string> {
  const page = r.kind === 'visible' ? await store.workspaces.listVisible(r.q) : await store.workspaces.listTeam(r.q.teamId, r.q);
  return writePage({ items: page.items.map(workspaceView), nextCursor: page.nextCursor });
}

/** Lists read on the server's own thread, through its store. */
export function inProcessLists(store: Store): Lists {
  return {
    visible: async (q) => new SerializedJson(await readPage(store, { kind: 'visible', q })),
    team: async (q) => new SerializedJson(await readPage(store, { kind: 'team', q })),
    close: async () => undefined,
  };
}

/**
 * Lists read on worker threads, each with its own database connection, so
 * the event loop keeps only HTTP and authentication for them: under load the
 * server's one thread is what limits throughput while another core sits
 * partly idle. SQLite in WAL mode serves readers beside the writer, and a
 * reader sees every change committed before it starts; on PostgreSQL the
 * threads share `target.poolSize` connections between them. Each page goes
 * to the thread with the fewest in flight; a thread that dies fails only its
 * pages in flight and is replaced on the next request.
 */
export function workerLists(target: DatabaseTarget, threads: number): Lists {
  // from source (the tests), the worker loads the TypeScript loader first
  const fromSource = import.meta.url.endsWith('.ts');
  const file = new URL(fromSource ? './list-worker.ts' : './list-worker.js', import.meta.url);
  const perThread: DatabaseTarget = target.kind === 'postgres' ? { ...target, poolSize: Math.max(1, Math.floor(target.poolSize / threads)) } : target;
  type Slot = { worker: Worker | undefined; pending: Map<number, { resolve(json: string): void; reject(err: Error): void }> };
  const slots: Slot[] = Array.from({ length: Math.max(1, threads) }, () => ({ worker: undefined, pending: new Map() }));
  let next = 0;

  function failAll(slot: Slot, err: Error) {
    for (const p of slot.pending.values()) p.reject(err);
    slot.pending.clear();
  }

  function start(slot: Slot): Worker {
    const w = fromSource
      ? new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(file.href)}); })`, { eval: true, workerData: { target: perThread } })
      : new Worker(file, { workerData: { target: perThread } });
    w.on('message', (a: Answer) => {
      const p = slot.pending.get(a.id);
      if (!p) return;
      slot.pending.delete(a.id);
      if (slot.pending.size === 0) w.unref();
      if ('json' in a) p.resolve(a.json);
      else if (a.error.code !== undefined) p.reject(new DomainError(a.error.code, a.error.message, a.error.details));
      else p.reject(new Error(`list reader: ${a.error.message}`));
    });
    // the slot's pages in flight are this thread's until it is retired; after that they belong to its successor
    const retire = (err: Error) => {
      if (slot.worker !== w) return;
      slot.worker = undefined;
      failAll(slot, err);
    };
    w.on('error', retire);
    w.on('exit', (code) => retire(new Error(`list reader exited with code ${code}`)));
    return w;
  }

  function ask(r: ListRequest): Promise<PageJson> {
    const slot = slots.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const w = (slot.worker ??= start(slot));
    const id = next++;
    return new Promise<string>((resolve, reject) => {
      // a thread with pages in flight keeps the process alive until it answers; an idle one does not
      if (slot.pending.size === 0) w.ref();
      slot.pending.set(id, { resolve, reject });
      w.postMessage({ id, ...r });
    }).then((json) => new SerializedJson(json));
  }

  return {
    visible: (q) => ask({ kind: 'visible', q }),
    team: (q) => ask({ kind: 'team', q }),
    async close() {
      await Promise.all(
        slots.map(async (slot) => {
          const w = slot.worker;
          slot.worker = undefined;
          failAll(slot, new Error('the server is shutting down'));
          if (w) await w.terminate();
        }),
      );
    },
  };
}

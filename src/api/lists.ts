import { Worker } from 'node:worker_threads';
import { DomainError } from '../domain/index.js';
import type { DatabaseTarget, Store } from '../store/index.js';
import type { WorkspaceView } from './schemas.js';
import { workspaceView } from './views.js';

/** A response body already written as JSON; `T` is what it holds, so a route's handler stays typed by its response schema. */
export class SerializedJson<T = unknown> {
  declare readonly holds?: T;
  constructor(readonly json: string) {}
}

type PageJson = SerializedJson<{ items: WorkspaceView[]; nextCursor: string | null }>;

export interface VisibleQuery {
  userId?: string;
  ownerId?: string;
  holdsGpu?: boolean;
  limit: number;
  cursor?: string;
}

export interface TeamQuery {
  teamId: string;
  limit: number;
  cursor?: string;
}

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

type Request = { id: number } & ({ kind: 'visible'; q: VisibleQuery } | { kind: 'team'; q: TeamQuery });
type Answer = { id: number; json: string } | { id: number; error: { status?: number; code?: string; message: string; details?: Record<string, unknown> } };

/** What one list request does, wherever it runs: read the page, map it to views, write it out. */
export async function readPage(store: Store, r: Request): Promise<string> {
  const page = r.kind === 'visible' ? await store.workspaces.listVisible(r.q) : await store.workspaces.listTeam(r.q.teamId, r.q);
  return JSON.stringify({ items: page.items.map(workspaceView), nextCursor: page.nextCursor });
}

/** Lists read on the server's own thread, through its store. */
export function inProcessLists(store: Store): Lists {
  let id = 0;
  return {
    visible: async (q) => new SerializedJson(await readPage(store, { id: id++, kind: 'visible', q })),
    team: async (q) => new SerializedJson(await readPage(store, { id: id++, kind: 'team', q })),
    close: async () => undefined,
  };
}

/**
 * Lists read on a worker thread with its own database connection, so the
 * event loop keeps only HTTP and authentication for them: under load the
 * server's one thread is what limits throughput, while a second core sits
 * partly idle. SQLite in WAL mode serves the reader beside the writer, and a
 * reader sees every change committed before it starts; on PostgreSQL the
 * worker has a pool of its own. A worker that dies fails the pages in flight
 * and is replaced on the next request.
 */
export function workerLists(target: DatabaseTarget): Lists {
  // from source (the tests), the worker loads the TypeScript loader first
  const fromSource = import.meta.url.endsWith('.ts');
  const file = new URL(fromSource ? './list-worker.ts' : './list-worker.js', import.meta.url);
  const pending = new Map<number, { resolve(json: string): void; reject(err: Error): void }>();
  let worker: Worker | undefined;
  let closing = false;
  let next = 0;

  function failAll(err: Error) {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  }

  function start(): Worker {
    const w = fromSource
      ? new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(file.href)}); })`, { eval: true, workerData: { target } })
      : new Worker(file, { workerData: { target } });
    w.on('message', (a: Answer) => {
      const p = pending.get(a.id);
      if (!p) return;
      pending.delete(a.id);
      if ('json' in a) p.resolve(a.json);
      else if (a.error.status !== undefined && a.error.code !== undefined) p.reject(new DomainError(a.error.status, a.error.code, a.error.message, a.error.details));
      else p.reject(new Error(`list reader: ${a.error.message}`));
    });
    w.on('error', (err) => {
      if (worker === w) worker = undefined;
      failAll(err);
    });
    w.on('exit', (code) => {
      if (worker === w) worker = undefined;
      if (!closing) failAll(new Error(`list reader exited with code ${code}`));
    });
    w.unref();
    return w;
  }

  function ask(r: { kind: 'visible'; q: VisibleQuery } | { kind: 'team'; q: TeamQuery }): Promise<PageJson> {
    worker ??= start();
    const id = next++;
    const w = worker;
    return new Promise<string>((resolve, reject) => {
      pending.set(id, { resolve, reject });
      w.postMessage({ id, ...r });
    }).then((json) => new SerializedJson(json));
  }

  return {
    visible: (q) => ask({ kind: 'visible', q }),
    team: (q) => ask({ kind: 'team', q }),
    async close() {
      closing = true;
      const w = worker;
      worker = undefined;
      failAll(new Error('the server is shutting down'));
      if (w) await w.terminate();
    },
  };
}

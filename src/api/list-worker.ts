import { parentPort, workerData } from 'node:worker_threads';
import { DomainError } from '../domain/index.js';
import { createStore, type DatabaseTarget } from '../store/index.js';
import { readPage } from './lists.js';

/** The list reader's thread (see `workerLists`): one store of its own, one page at a time per message. */
const { target } = workerData as { target: DatabaseTarget };
const port = parentPort!;
const store = await createStore(target, { migrate: false });

port.on('message', (r: Parameters<typeof readPage>[1]) => {
  readPage(store, r).then(
    (json) => port.postMessage({ id: r.id, json }),
    (err: unknown) =>
      port.postMessage({
        id: r.id,
        error: err instanceof DomainError ? { status: err.status, code: err.code, message: err.message, details: err.details } : { message: err instanceof Error ? err.message : String(err) },
      }),
  );
});

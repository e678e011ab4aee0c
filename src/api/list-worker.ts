import { parentPort, workerData } from 'node:worker_threads';
import { DomainError } from '../domain/index.js';
import { createStore, type DatabaseTarget } from '../store/index.js';
import { readPage, type ListRequest } from './lists.js';

/** A list thread (see `workerLists`): a store of its own, and a page read and written out for each message. */
const { target } = workerData as { target: DatabaseTarget };
const port = parentPort!;
const store = await createStore(target, { migrate: false, listen: false });

port.on('message', (r: ListRequest & { id: number }) => {
  readPage(store, r).then(
    (json) => port.postMessage({ id: r.id, json }),
    (err: unknown) =>
      port.postMessage({
        id: r.id,
        error: err instanceof DomainError ? { code: err.code, message: err.message, details: err.details } : { message: err instanceof Error ? err.message : String(err) },
      }),
  );
});

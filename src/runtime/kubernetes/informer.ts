import { setTimeout as sleep } from 'node:timers/promises';
import { KubeError, type KubeClient } from './client.js';

export interface Listed<T> {
  metadata: { resourceVersion?: string };
  items: T[];
}

interface Named {
  metadata?: { uid?: string; name?: string; namespace?: string; resourceVersion?: string };
}

export interface InformerEvents<T> {
  /** the cache holds a fresh full list (at start, and after every relist) */
  synced?: (items: T[]) => void;
  added?: (o: T) => void;
  modified?: (o: T) => void;
  deleted?: (o: T) => void;
  /** the API server cannot be reached, or answers with errors; null when it can again */
  unreachable?: (reason: string | null) => void;
}

/**
 * A list-then-watch cache of one collection (`/api/v1/pods?labelSelector=…`):
 * resumes the watch from the last resourceVersion it saw (bookmarks keep it
 * fresh while nothing changes), relists when the API server says that
 * version is gone (410 Expired), and backs off from 0.5 s to 8 s while the
 * API server cannot be reached.
 */
export function createInformer<T extends Named>(client: KubeClient, path: string, query: string, on: InformerEvents<T>, opts: { index?: (o: T) => string | undefined } = {}) {
  const cache = new Map<string, T>();
  /** `opts.index`'s value → the cache key of the object holding it (one object per value) */
  const indexed = new Map<string, string>();
  const abort = new AbortController();
  let resourceVersion = '';
  let synced = false;
  let relists = 0;
  let failing: string | null = null;
  let firstSync: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (firstSync = resolve));

  const key = (o: T) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
  function put(k: string, o: T): T | undefined {
    const had = cache.get(k);
    const before = had && opts.index?.(had);
    const after = opts.index?.(o);
    if (before !== undefined && before !== after && indexed.get(before) === k) indexed.delete(before);
    if (after !== undefined) indexed.set(after, k);
    cache.set(k, o);
    return had;
  }
  function drop(k: string): void {
    const had = cache.get(k);
    const v = had && opts.index?.(had);
    if (v !== undefined && indexed.get(v) === k) indexed.delete(v);
    cache.delete(k);
  }

  async function relist(): Promise<void> {
    const list = await client.get<Listed<T>>(`${path}?${query}`);
    const seen = new Set<string>();
    for (const o of list.items) {
      const k = key(o);
      seen.add(k);
      const had = put(k, o);
      if (synced && had?.metadata?.resourceVersion !== o.metadata?.resourceVersion) (had ? on.modified : on.added)?.(o);
    }
    for (const [k, o] of cache) {
      if (!seen.has(k)) {
        drop(k);
        if (synced) on.deleted?.(o);
      }
    }
    resourceVersion = list.metadata.resourceVersion ?? '';
    relists++;
    synced = true;
    on.synced?.(list.items);
    firstSync();
  }

  let backoff = 500;
  /** The API server answered: the outage, if any, is over. */
  function reached(): void {
    backoff = 500;
    if (failing !== null) {
      failing = null;
      on.unreachable?.(null);
    }
  }

  /** Reads one watch until it ends; returns false when the version expired and a relist is due. */
  async function watchOnce(): Promise<boolean> {
    const res = await client.stream(`${path}?${query}&watch=1&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(resourceVersion)}&timeoutSeconds=${300 + Math.floor(Math.random() * 300)}`, abort.signal);
    reached();
    let buffered = '';
    for await (const chunk of res) {
      buffered += (chunk as Buffer).toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (!line.trim()) continue;
        const ev = JSON.parse(line) as { type: string; object: T & { code?: number; message?: string } };
        if (ev.type === 'ERROR') {
          if (ev.object.code === 410) return false;
          throw new KubeError(ev.object.code ?? 500, 'WatchError', ev.object.message ?? 'watch error');
        }
        const rv = ev.object.metadata?.resourceVersion;
        if (rv) resourceVersion = rv;
        if (ev.type === 'BOOKMARK') continue;
        const k = key(ev.object);
        if (ev.type === 'DELETED') {
          drop(k);
          on.deleted?.(ev.object);
        } else {
          const had = put(k, ev.object);
          (had ? on.modified : on.added)?.(ev.object);
        }
      }
    }
    return true;
  }

  async function run(): Promise<void> {
    let needList = true;
    while (!abort.signal.aborted) {
      try {
        if (needList) {
          await relist();
          reached();
        }
        needList = !(await watchOnce());
      } catch (err) {
        if (abort.signal.aborted) return;
        const e = err as Error & { status?: number; code?: string };
        // the version the watch would resume from is gone (compacted, or an API server restarted with a newer cache):
        // a fresh list, compared with the cache, reports every change meanwhile, so no transition is missed
        if (e instanceof KubeError && e.status === 410) needList = true;
        const reason = e.message;
        if (failing === null || failing !== reason) {
          failing = reason;
          on.unreachable?.(reason);
        }
        await sleep(backoff, undefined, { signal: abort.signal }).catch(() => undefined);
        backoff = Math.min(8_000, backoff * 2);
      }
    }
  }

  void run();

  return {
    /** resolves once the first list is in */
    ready,
    get synced() {
      return synced;
    },
    /** the reason the API server cannot be reached now, or null */
    get failing() {
      return failing;
    },
    /** full lists taken: the first, and one after each expired resume */
    get relists() {
      return relists;
    },
    list: () => [...cache.values()],
    get: (namespace: string, name: string) => cache.get(`${namespace}/${name}`),
    /** the object whose `opts.index` value is `value` */
    byIndex: (value: string): T | undefined => {
      const k = indexed.get(value);
      return k === undefined ? undefined : cache.get(k);
    },
    stop: () => abort.abort(),
  };
}

export type Informer<T extends Named> = ReturnType<typeof createInformer<T>>;

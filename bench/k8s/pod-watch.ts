/**
 * A worker thread that watches workspace pods (Atrium's and the floor's,
 * cluster-wide, by the labels the renderers put on them) and reports, per
 * pod, when it was first seen, first bound to a node and first Running with
 * Ready true. It runs beside Atrium's event loop rather than on it, so what
 * it parses does not delay the server measured.
 *
 * Times are epoch milliseconds from `performance.timeOrigin + performance.now()`,
 * comparable with the main thread's.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { Agent, request } from 'node:https';
import { parentPort, workerData } from 'node:worker_threads';

export interface PodWatchInput {
  server: string;
  ca: string;
  cert: string;
  key: string;
  labelSelector: string;
}

/** One pod's milestones; posted once, when it is first Running and Ready. */
export interface PodTimes {
  type: 'ready';
  /** namespace/name */
  key: string;
  seen: number;
  scheduled: number | null;
  ready: number;
}

export type PodWatchMessage = PodTimes | { type: 'synced' } | { type: 'error'; message: string };

interface Pod {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: { nodeName?: string };
  status?: { phase?: string; conditions?: Array<{ type: string; status: string }> };
}

const input = workerData as PodWatchInput;
const agent = new Agent({ keepAlive: true, ca: readFileSync(input.ca), cert: readFileSync(input.cert), key: readFileSync(input.key) });
const now = () => performance.timeOrigin + performance.now();
const post = (m: PodWatchMessage) => parentPort!.postMessage(m);

const seen = new Map<string, number>();
const scheduled = new Map<string, number>();
const done = new Set<string>();

function look(pod: Pod): void {
  const key = `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
  if (done.has(key)) return;
  const t = now();
  if (!seen.has(key)) seen.set(key, t);
  if (pod.spec?.nodeName && !scheduled.has(key)) scheduled.set(key, t);
  const ready = pod.status?.phase === 'Running' && pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
  if (ready) {
    done.add(key);
    post({ type: 'ready', key, seen: seen.get(key)!, scheduled: scheduled.get(key) ?? null, ready: t });
  }
}

function get(path: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, input.server), { agent, headers: { accept: 'application/json' } }, resolve);
    req.on('error', reject);
    req.end();
  });
}

async function list(): Promise<string> {
  const res = await get(`/api/v1/pods?labelSelector=${encodeURIComponent(input.labelSelector)}`);
  let text = '';
  for await (const c of res) text += (c as Buffer).toString('utf8');
  if (res.statusCode !== 200) throw new Error(`list pods: HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
  const body = JSON.parse(text) as { metadata: { resourceVersion: string }; items: Pod[] };
  for (const p of body.items) look(p);
  return body.metadata.resourceVersion;
}

/** Watches from `rv` until the stream ends; returns the last version seen, or null when it expired (relist). */
async function watch(rv: string): Promise<string | null> {
  const res = await get(`/api/v1/pods?labelSelector=${encodeURIComponent(input.labelSelector)}&watch=1&allowWatchBookmarks=true&resourceVersion=${rv}&timeoutSeconds=3600`);
  if (res.statusCode !== 200) {
    res.resume();
    throw new Error(`watch pods: HTTP ${res.statusCode}`);
  }
  let buffered = '';
  for await (const chunk of res) {
    buffered += (chunk as Buffer).toString('utf8');
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (!line.trim()) continue;
      const ev = JSON.parse(line) as { type: string; object: Pod & { code?: number } };
      if (ev.type === 'ERROR') {
        if (ev.object.code === 410) return null;
        throw new Error(`watch pods: ${line.slice(0, 200)}`);
      }
      if (ev.object.metadata?.resourceVersion) rv = ev.object.metadata.resourceVersion;
      if (ev.type === 'ADDED' || ev.type === 'MODIFIED') look(ev.object);
    }
  }
  return rv;
}

async function main(): Promise<void> {
  let rv: string | null = await list();
  post({ type: 'synced' });
  for (;;) {
    try {
      rv = rv === null ? await list() : await watch(rv);
    } catch (err) {
      post({ type: 'error', message: (err as Error).message });
      await new Promise((r) => setTimeout(r, 500));
      rv = null;
    }
  }
}

main().catch((err: unknown) => post({ type: 'error', message: (err as Error).message }));

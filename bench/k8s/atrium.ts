import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Pool } from 'undici';
import { loadConfig } from '../../src/config/index.js';
import type { ClusterSet, KubernetesRuntime } from '../../src/runtime/index.js';
import { createServer, type Server } from '../../src/server/index.js';

/**
 * Atrium in this process, as test/helpers.ts starts it, with the Kubernetes
 * runtime on the benchmark's control plane: in the same process so that the
 * runtime's own count of the requests it sent (`KubernetesRuntime.requests`)
 * can be read; the API server's metrics carry no user label. It is driven
 * only through its HTTP API.
 */

/** A cheap profile: the scheduler and quota count it, KWOK runs it, nothing real starts. */
export const BENCH_PROFILE = {
  name: 'bench-tiny',
  displayName: 'Bench tiny',
  environment: 'shell',
  cpu: { guarantee: '10m', limit: '100m' },
  memory: { guarantee: '16Mi', limit: '64Mi' },
  storage: '64Mi',
} as const;

/** Each team's quota: room for its workspaces many times over. */
export const TEAM_QUOTA = { cpu: '64', memory: '256Gi', storage: '1Ti', workspaces: 200 } as const;

export interface Atrium {
  server: Server;
  runtime: KubernetesRuntime;
  url: string;
  token: string;
  /** calls the API as the admin; never throws on HTTP errors */
  call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

export async function startAtrium(opts: { work: string; kubeconfig: string; logLevel: string }): Promise<Atrium> {
  const config = loadConfig({
    env: { ATRIUM_LOG_LEVEL: opts.logLevel },
    flags: {
      'listen.port': 0,
      'ssh.port': 0,
      dataDir: join(opts.work, 'atrium'),
      database: `sqlite:${join(opts.work, 'atrium.db')}`,
      'runtime.kind': 'kubernetes',
      profiles: [BENCH_PROFILE],
      'kubernetes.clusters': [{ name: 'bench', kubeconfig: opts.kubeconfig, endpoint: 'apiserver' }],
    },
  });
  const server = await createServer(config);
  const password = randomBytes(12).toString('hex');
  await server.identity.bootstrapAdmin('admin', password);
  const url = await server.listen();
  // one cluster: its runtime counts the requests it sends
  const runtime = (server.runtime as ClusterSet | undefined)?.clusters?.[0];
  if (!runtime || typeof runtime.requests !== 'number') throw new Error('Atrium started without its Kubernetes runtime');
  // keep-alive connections, enough that a burst of creates is not queued in the client for long
  const http = new Pool(url, { connections: 64, pipelining: 1 });
  const call: Atrium['call'] = async (method, path, body) => {
    const res = await http.request({
      method: method as 'GET',
      path,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.body.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.statusCode, body: parsed };
  };
  let token = '';
  const login = await call('POST', '/api/v1/auth/login', { username: 'admin', password, token: { name: 'bench' } });
  if (login.status !== 200) throw new Error(`login: HTTP ${login.status} ${JSON.stringify(login.body)}`);
  token = login.body.token as string;
  return {
    server,
    runtime,
    url,
    token,
    call,
    async close() {
      await http.close();
      await server.close();
    },
  };
}

/** A phase event as the events stream carries it. */
export interface PhaseEvent {
  team: string;
  workspace: string;
  phase: string;
  reason?: string;
  /** epoch ms the benchmark read it */
  at: number;
}

/**
 * The admin's live event stream (`GET /api/v1/events`, Server-Sent Events):
 * every phase change of every team the admin belongs to, as a client such as
 * the portal sees it. Resolves once the stream's `ready` lists `teams`.
 */
export async function openEvents(a: Atrium, teams: string[], onPhase: (e: PhaseEvent) => void): Promise<{ close(): void }> {
  const abort = new AbortController();
  const res = await fetch(`${a.url}/api/v1/events`, { headers: { authorization: `Bearer ${a.token}`, accept: 'text/event-stream' }, signal: abort.signal });
  if (res.status !== 200 || !res.body) throw new Error(`GET /api/v1/events: HTTP ${res.status}`);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let ready: (ok: true) => void = () => undefined;
  let failed: (err: Error) => void = () => undefined;
  const readyP = new Promise<true>((resolve, reject) => {
    ready = resolve;
    failed = reject;
  });
  const want = new Set(teams);
  const pump = async () => {
    let buffered = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffered += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffered.indexOf('\n\n')) >= 0) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        let type = 'message';
        let data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) type = line.slice(7);
          else if (line.startsWith('data: ')) data += line.slice(6);
        }
        if (type === 'ready') {
          const listed = new Set((JSON.parse(data) as { teams: string[] }).teams);
          if ([...want].every((t) => listed.has(t))) ready(true);
          else failed(new Error(`the event stream shows ${listed.size} teams, not all ${want.size} of the run's`));
        } else if (type === 'phase') {
          const e = JSON.parse(data) as { team: string; workspace: string | null; data: { phase: string; reason?: string } };
          if (e.workspace) onPhase({ team: e.team, workspace: e.workspace, phase: e.data.phase, ...(e.data.reason ? { reason: e.data.reason } : {}), at: performance.timeOrigin + performance.now() });
        }
      }
    }
  };
  pump().catch((err: unknown) => {
    if (!abort.signal.aborted) failed(err as Error);
  });
  await readyP;
  return { close: () => abort.abort() };
}

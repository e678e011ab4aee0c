import { Agent as HttpsAgent, request as httpsRequest, type RequestOptions } from 'node:https';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import type { KubeObject } from './render/index.js';

/** An error answer of the API server, with its Status reason (`Conflict`, `Forbidden`, `NotFound`, `Expired` …). */
export class KubeError extends Error {
  constructor(readonly status: number, readonly reason: string, message: string, readonly details?: unknown) {
    super(message);
  }
}

/** How a cluster is reached: a kubeconfig file and context, or the pod's own service account. */
export interface ClusterAccess {
  kubeconfig?: string | undefined;
  context?: string | undefined;
}

export function loadKubeConfig(access: ClusterAccess): KubeConfig {
  const kc = new KubeConfig();
  if (access.kubeconfig) {
    kc.loadFromFile(access.kubeconfig);
    if (access.context) kc.setCurrentContext(access.context);
  } else {
    kc.loadFromCluster();
  }
  if (!kc.getCurrentCluster()) throw new Error(`kubeconfig ${access.kubeconfig ?? '(in-cluster)'}: no cluster for context ${access.context ?? kc.getCurrentContext()}`);
  return kc;
}

/** The REST path of a kind's collection or one object of it. */
export function resourcePath(o: { apiVersion: string; kind: string; metadata?: { namespace?: string | undefined; name?: string } }, plural: string, named = true): string {
  const base = o.apiVersion.includes('/') ? `/apis/${o.apiVersion}` : `/api/${o.apiVersion}`;
  const ns = o.metadata?.namespace ? `/namespaces/${o.metadata.namespace}` : '';
  return `${base}${ns}/${plural}${named && o.metadata?.name ? `/${o.metadata.name}` : ''}`;
}

/** Plurals of the kinds Atrium writes. */
export const PLURALS: Record<string, string> = {
  Namespace: 'namespaces',
  ResourceQuota: 'resourcequotas',
  LimitRange: 'limitranges',
  ServiceAccount: 'serviceaccounts',
  NetworkPolicy: 'networkpolicies',
  AuthorizationPolicy: 'authorizationpolicies',
  Role: 'roles',
  RoleBinding: 'rolebindings',
  PersistentVolumeClaim: 'persistentvolumeclaims',
  PersistentVolume: 'persistentvolumes',
  Secret: 'secrets',
  Service: 'services',
  StatefulSet: 'statefulsets',
  RuntimeClass: 'runtimeclasses',
  ValidatingAdmissionPolicy: 'validatingadmissionpolicies',
  ValidatingAdmissionPolicyBinding: 'validatingadmissionpolicybindings',
};

export function pathOf(o: KubeObject, named = true): string {
  const plural = PLURALS[o.kind];
  if (!plural) throw new Error(`no REST path known for kind ${o.kind}`);
  return resourcePath(o, plural, named);
}

/** The field manager every write of Atrium's uses (server-side apply). */
export const FIELD_MANAGER = 'atrium';

/**
 * A thin client for one API server: JSON requests, server-side apply and
 * streaming GETs, authenticated as the kubeconfig says. Counts its requests,
 * for metrics and the benchmark.
 */
export function createKubeClient(kc: KubeConfig) {
  const cluster = kc.getCurrentCluster()!;
  const server = new URL(cluster.server);
  const secure = server.protocol === 'https:';
  let requests = 0;
  /**
   * One keep-alive agent for every request, so that connections (and their
   * TLS handshakes) are reused: the kubeconfig's own options come with a new
   * agent each time. A new one is made only when the TLS credentials change
   * (a rotated client certificate).
   */
  let agent: { key: string; agent: HttpsAgent | HttpAgent } | undefined;
  function agentFor(opts: RequestOptions): HttpsAgent | HttpAgent {
    const key = JSON.stringify([opts.ca, opts.cert, opts.key, opts.pfx, opts.passphrase, opts.rejectUnauthorized, opts.servername].map((v) => (Buffer.isBuffer(v) ? v.toString('base64') : v)));
    if (agent?.key === key) return agent.agent;
    agent?.agent.destroy();
    // an idle connection is closed after 30 s, before API servers close theirs (kube-apiserver: 90 s), so a request
    // is rarely sent on a connection the server is closing; `open` retries the few that are
    const common = { keepAlive: true, keepAliveMsecs: 15_000, maxFreeSockets: 64, timeout: 30_000 };
    const made = secure
      ? new HttpsAgent({
          ...common,
          ...(opts.ca ? { ca: opts.ca } : {}),
          ...(opts.cert ? { cert: opts.cert } : {}),
          ...(opts.key ? { key: opts.key } : {}),
          ...(opts.pfx ? { pfx: opts.pfx } : {}),
          ...(opts.passphrase ? { passphrase: opts.passphrase } : {}),
          ...(opts.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: opts.rejectUnauthorized }),
          ...(opts.servername ? { servername: opts.servername } : {}),
        })
      : new HttpAgent(common);
    agent = { key, agent: made };
    return made;
  }

  async function options(method: string, path: string, headers: Record<string, string>): Promise<RequestOptions> {
    const opts: RequestOptions = {
      method,
      host: server.hostname.replace(/^\[|\]$/g, ''),
      port: server.port || (secure ? 443 : 80),
      path: `${server.pathname.replace(/\/$/, '')}${path}`,
      headers: { accept: 'application/json', ...headers },
    };
    // credentials (a service account's token is read again as it rotates) and TLS settings from the kubeconfig
    await kc.applyToHTTPSOptions(opts);
    // through a proxy the kubeconfig names, its own agent carries the connection
    if (!cluster.proxyUrl) opts.agent = agentFor(opts);
    return opts;
  }

  /**
   * Opens a request and resolves with the response, whatever its status. A
   * plain request must answer within 30 s; a stream (a watch, a log follow)
   * may stay quiet as long as it likes, and TCP keep-alive finds a peer that
   * went away without a word.
   */
  async function open(method: string, path: string, body: string | undefined, headers: Record<string, string>, signal?: AbortSignal, streaming = false): Promise<IncomingMessage> {
    const opts = await options(method, path, body === undefined ? headers : { 'content-length': String(Buffer.byteLength(body)), ...headers });
    for (let attempt = 1; ; attempt++) {
      requests++;
      try {
        return await send(opts, method, path, body, signal, streaming);
      } catch (err) {
        // a kept-alive connection the server closed as the request went out: it never reached the server, so it is sent again, once
        if (attempt === 1 && (err as { reusedSocket?: boolean }).reusedSocket && (err as NodeJS.ErrnoException).code === 'ECONNRESET' && !signal?.aborted) continue;
        throw err;
      }
    }
  }

  function send(opts: RequestOptions, method: string, path: string, body: string | undefined, signal: AbortSignal | undefined, streaming: boolean): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = (secure ? httpsRequest : httpRequest)({ ...opts, ...(signal ? { signal } : {}) }, (res) => {
        if (streaming) req.setTimeout(0);
        resolve(res);
      });
      req.on('error', (err) => reject(Object.assign(err, { reusedSocket: req.reusedSocket })));
      req.on('socket', (s) => s.setKeepAlive(true, 15_000));
      req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path}: no answer from ${server.host} within 30s`)));
      req.end(body);
    });
  }

  async function readBody(res: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  function errorOf(status: number, text: string, what: string): KubeError {
    let parsed: { reason?: string; message?: string; details?: unknown } = {};
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      // not a Status object: keep the text
    }
    return new KubeError(status, parsed.reason ?? String(status), `${what}: ${parsed.message ?? (text.slice(0, 300) || `HTTP ${status}`)}`, parsed.details);
  }

  async function call<T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const res = await open(method, path, text, text === undefined ? {} : { 'content-type': contentType });
    const out = await readBody(res);
    if ((res.statusCode ?? 500) >= 300) throw errorOf(res.statusCode ?? 500, out, `${method} ${path}`);
    return (out ? JSON.parse(out) : {}) as T;
  }

  return {
    kc,
    server: server.origin,
    /** Closes the idle connections kept for reuse. */
    close: () => agent?.agent.destroy(),
    /** requests sent so far */
    get requests() {
      return requests;
    },
    get: <T>(path: string) => call<T>('GET', path),
    delete: (path: string, body?: unknown) => call<unknown>('DELETE', path, body),
    post: <T>(path: string, body: unknown) => call<T>('POST', path, body),
    /**
     * Server-side apply as Atrium's field manager. A field another manager
     * owns is a conflict (409), reported, never forced.
     */
    apply: (o: KubeObject, opts: { dryRun?: boolean } = {}) =>
      call<KubeObject>('PATCH', `${pathOf(o)}?fieldManager=${FIELD_MANAGER}&fieldValidation=Strict${opts.dryRun ? '&dryRun=All' : ''}`, o, 'application/apply-patch+yaml'),
    /** A streaming GET (watch, log follow): the response, for the caller to read. */
    stream: async (path: string, signal?: AbortSignal): Promise<IncomingMessage> => {
      const res = await open('GET', path, undefined, {}, signal, true);
      if ((res.statusCode ?? 500) >= 300) throw errorOf(res.statusCode ?? 500, await readBody(res), `GET ${path}`);
      return res;
    },
  };
}

export type KubeClient = ReturnType<typeof createKubeClient>;

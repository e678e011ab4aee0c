import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import { registerApi, type RouteDef } from '../api/index.js';
import type { ResolvedConfig } from '../config/index.js';
import { createIdentity, type Identity } from '../identity/index.js';
import { createStore, type Store } from '../store/index.js';
import { VERSION } from './version.js';

export interface Server {
  app: FastifyInstance;
  store: Store;
  identity: Identity;
  routes: RouteDef[];
  /** every method and URL the HTTP router holds, as it registered them */
  registered: Array<{ method: string; url: string }>;
  config: ResolvedConfig;
  /** the URL the server answers on, once listening */
  url: string;
  listen(): Promise<string>;
  close(): Promise<void>;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** The composition root: wires the store, identity and API into one HTTP server. */
export async function createServer(config: ResolvedConfig): Promise<Server> {
  const store = await createStore(config.database);
  const identity = createIdentity({
    store,
    sessionTtlSeconds: config.auth.sessionTtlSeconds,
    loginAttempts: config.auth.loginAttempts,
    loginWindowSeconds: config.auth.loginWindowSeconds,
    header: config.auth.header,
    headerPrefix: config.auth.headerPrefix,
    trustedProxies: config.auth.trustedProxies,
    defaultQuota: config.defaultQuota,
  });
  const https = config.tls ? { key: readFileSync(config.tls.key), cert: readFileSync(config.tls.cert) } : null;
  const app = Fastify({
    ...(https ? { https } : {}),
    bodyLimit: config.bodyLimit,
    // Event streams stay open; shutting down must not wait for every browser tab.
    forceCloseConnections: true,
    // The audit log records every change; per-request lines would only slow the hot path.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: config.auth.trustedProxies.length > 0 ? config.auth.trustedProxies : false,
    logger: {
      level: config.logLevel,
      redact: ['req.headers.authorization', 'req.headers.cookie', 'err.config.headers'],
    },
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
  }) as unknown as FastifyInstance;
  const registered: Server['registered'] = [];
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) registered.push({ method, url: r.url });
  });
  const routes = registerApi(app, {
    store,
    identity,
    profiles: config.profiles,
    defaultQuota: config.defaultQuota,
    https: Boolean(https),
    sessionTtlSeconds: config.auth.sessionTtlSeconds,
    version: VERSION,
    log: app.log,
  });
  const sweep = setInterval(() => void store.credentials.sessions.removeExpired().catch((err: unknown) => app.log.error({ err }, 'session sweep failed')), 3600_000);
  sweep.unref();

  const server: Server = {
    app,
    store,
    identity,
    routes,
    registered,
    config,
    url: '',
    async listen() {
      const { host, port } = config.listen;
      if (!https && !isLoopback(host)) {
        app.log.warn(`listening on ${host} without TLS: passwords and tokens cross the network in clear text; set tls.cert and tls.key`);
      }
      await app.listen({ host, port });
      const addr = app.server.address();
      const actualPort = typeof addr === 'object' && addr ? addr.port : port;
      const shownHost = isIP(host) === 6 ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
      server.url = `${https ? 'https' : 'http'}://${shownHost}:${actualPort}`;
      return server.url;
    },
    async close() {
      clearInterval(sweep);
      await app.close();
      await store.close();
    },
  };
  return server;
}

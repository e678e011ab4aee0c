import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { createProxy, createSshAccess, createSshMetrics, type Proxy, type SshAccess } from '../access/index.js';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import { inProcessLists, registerApi, restartProfile, workerLists, type RouteDef } from '../api/index.js';
import type { ResolvedConfig } from '../config/index.js';
import { createCookies, createIdentity, createOidc, createWorkloadIdentity, loadSshKeys, OidcDiscoveryFailed, SigningKeysSealedElsewhere, type Identity, type SshKeys, type WorkloadIdentity } from '../identity/index.js';
import { createStore, type Machine, type Store } from '../store/index.js';
import { coalesced, createClusterInputs, createCuller, createReconciler, createWorkloadTokenSync, type Culler, type Reconciler, type WorkspaceKeys } from '../reconciler/index.js';
import { createLocalRuntime, loadKubernetes, type KubernetesRuntime, type Runtime } from '../runtime/index.js';
import { ConfigError, VERSION } from '../config/index.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { textLogStream } from './log-text.js';
import { createPortal } from './portal.js';

export { DEFAULT_PORTAL_DIR } from './portal.js';


export interface Server {
  app: FastifyInstance;
  store: Store;
  identity: Identity;
  routes: RouteDef[];
  /** whether the web portal's built assets were found (it answers 503 with a hint otherwise) */
  portalBuilt: boolean;
  /** every method and URL the HTTP router holds, as it registered them */
  registered: Array<{ method: string; url: string }>;
  config: ResolvedConfig;
  runtime: Runtime | undefined;
  reconciler: Reconciler | undefined;
  culler: Culler | undefined;
  proxy: Proxy;
  /** the SSH gateway and tunnel */
  ssh: SshAccess;
  /** the SSH keys the control plane holds (the gateway's host key, and per workspace) */
  sshKeys: SshKeys;
  /** Atrium as an OpenID issuer for workloads; absent when disabled */
  workloadIdentity: WorkloadIdentity | undefined;
  /** the URL the server answers on, once listening */
  url: string;
  listen(): Promise<string>;
  close(): Promise<void>;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** The host people reach a listen address by: a wildcard address means this machine. */
function shownHost(host: string): string {
  return host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
}

/** A listen address as the host of a URL. */
function urlHost(host: string): string {
  const h = shownHost(host);
  return isIP(h) === 6 ? `[${h}]` : h;
}

const DEFAULT_AGENT = fileURLToPath(new URL('../agent/atrium-agent', import.meta.url));

function which(binary: string): boolean {
  return (process.env.PATH ?? '/usr/sbin:/usr/bin').split(':').some((dir) => existsSync(join(dir, binary)));
}

/** The runtime the config asks for, and the machine admission places workspaces on. */
async function createRuntime(config: ResolvedConfig, store: Store, sshKeys: SshKeys, log: RuntimeLog): Promise<Placed | undefined> {
  if (config.runtime.kind === 'none') return undefined;
  if (config.runtime.kind === 'kubernetes') return createClusterRuntimes(config, store, sshKeys, log);
  const agentPath = config.runtime.agent ?? DEFAULT_AGENT;
  if (process.getuid?.() !== 0) {
    throw new ConfigError('the local runtime creates sandboxes and needs root: run `atrium serve` as root, or set runtime.kind: none (--runtime none) to run without workspaces');
  }
  for (const binary of ['runc', 'sshd', 'mkfs.ext4', 'skopeo', 'umoci']) {
    if (!which(binary)) throw new ConfigError(`the local runtime needs ${binary}; install it with scripts/deps.sh run`);
  }
  if (!existsSync(agentPath)) throw new ConfigError(`runtime.agent: ${agentPath} does not exist; build it with scripts/deps.sh run`);
  const runtime = await createLocalRuntime({
    dir: join(config.dataDir, 'local'),
    agentPath,
    uidFor: (userId) => store.hostUids.get(userId, config.runtime.uidBase),
    reserve: config.runtime.reserve,
    gpuInventory: config.runtime.gpus,
    pids: config.runtime.pids,
    stopGraceMs: config.runtime.stopGraceMs,
    egress: config.runtime.egress,
    imageGraceMs: config.runtime.imageGraceMs,
    log,
  });
  return { runtime, machines: [await machineOf(runtime, 'this machine')] };
}

/** The per-workspace keys of the control plane's SSH keys, as runtimes and renderers take them. */
function workspaceKeys(sshKeys: SshKeys): WorkspaceKeys {
  return { hostPrivateKey: (id) => sshKeys.workspaceHost(id).privateKey, gatewayPublicKey: (id) => sshKeys.workspaceClientPublic(id) };
}

type RuntimeLog = { info(obj: unknown, msg?: string): void; warn(obj: unknown, msg?: string): void };

/**
 * The runtime is made before the server's logger exists: its lines go to
 * standard error until `target` is set to that logger.
 */
function lateLog(): RuntimeLog & { target?: RuntimeLog } {
  return {
    info(obj, msg) {
      if (this.target) this.target.info(obj, msg);
      else console.error(msg, obj);
    },
    warn(obj, msg) {
      if (this.target) this.target.warn(obj, msg);
      else console.error(msg, obj);
    },
  };
}

/** A pod's grace between SIGTERM and SIGKILL, in the whole seconds Kubernetes takes. */
function stopGraceSeconds(config: ResolvedConfig): number {
  return Math.ceil(config.runtime.stopGraceMs / 1000);
}

/** A runtime's capacity as admission places on it. */
async function machineOf(runtime: Runtime, name: string, cluster?: string): Promise<Machine> {
  const capacity = await runtime.capacity();
  const gpus: Record<string, number> = {};
  for (const g of capacity.gpus) gpus[g.type] = (gpus[g.type] ?? 0) + 1;
  return { name, ...(cluster ? { cluster } : {}), allocatable: { cpuMilli: capacity.cpuMilli, memoryBytes: capacity.memoryBytes }, gpus, tiers: capacity.tiers, publicEgress: capacity.publicEgress };
}

/**
 * The Kubernetes runtime on every configured cluster, as one runtime that
 * finds each workspace's cluster, and each cluster's capacity for admission
 * (refreshed from the node watches every 30 s).
 */
async function createClusterRuntimes(config: ResolvedConfig, store: Store, sshKeys: SshKeys, log: RuntimeLog): Promise<Placed> {
  const { createClusterSet, createKubeClient, createKubernetesRuntime, loadKubeConfig, renderSettings } = await loadKubernetes();
  const lookup = createClusterInputs(store, workspaceKeys(sshKeys));
  const runtimes: KubernetesRuntime[] = [];
  for (const cluster of config.kubernetes.clusters) {
    const where = `kubernetes.clusters ${cluster.name}`;
    let client;
    try {
      client = createKubeClient(loadKubeConfig({ kubeconfig: cluster.kubeconfig, context: cluster.context }));
    } catch (err) {
      throw new ConfigError(`${where}: ${(err as Error).message}`);
    }
    const server = client.server;
    runtimes.push(
      await createKubernetesRuntime({
        cluster: cluster.name,
        client,
        settings: renderSettings(config.kubernetes, cluster, { stopGraceSeconds: stopGraceSeconds(config) }),
        endpoint: cluster.endpoint,
        startTimeoutMs: config.kubernetes.startTimeoutMs,
        socketDir: join(config.dataDir, 'kubernetes', cluster.name),
        lookup,
        log,
      }).catch((err: unknown) => {
        throw new ConfigError(`${where}: cannot reach the API server at ${server}: ${(err as Error).message}`);
      }),
    );
  }
  const machines: Machine[] = [];
  const refresh = async () => {
    const fresh = await Promise.all(runtimes.map((r) => machineOf(r, `cluster ${r.name}`, r.name)));
    machines.splice(0, machines.length, ...fresh);
  };
  await refresh();
  const runtime = createClusterSet(runtimes, async (id) => (await store.workspaceStates.get(id))?.cluster || undefined);
  const syncTenants = async () => {
    for (const r of runtimes) {
      try {
        await r.syncTenants();
      } catch (err) {
        log.warn({ err, cluster: r.name }, 'bringing the team namespaces in line failed; tried again at the next team change');
      }
    }
  };
  return { runtime, machines, refresh, syncTenants };
}

/** The runtime the server drives, the machines admission places on, and what keeps them current. */
interface Placed {
  runtime: Runtime;
  machines: Machine[];
  /** reads capacity again (clusters gain and lose nodes) */
  refresh?: () => Promise<void>;
  /** applies team changes (quota, members, deletion) to what the runtime made for teams */
  syncTenants?: () => Promise<void>;
}

export interface ServerOptions {
  /** a runtime built by the caller instead of the one `runtime.kind` names, with the machine admission places on */
  runtime?: (store: Store) => Promise<{ runtime: Runtime; machine: Machine }>;
  /** where the built portal is, instead of `dist/web` */
  portalDir?: string;
}

/** A file the config names, read, or a ConfigError naming the key. */
function readConfigFile(key: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(`${key}: cannot read ${file}: ${(err as Error).message}`);
  }
}

/** A database URL without its password, for messages. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'URL';
  }
}

/** The composition root: wires the store, identity, runtime, reconciler and API into one HTTP server. */
export async function createServer(config: ResolvedConfig, options: ServerOptions = {}): Promise<Server> {
  const store = await createStore(config.database).catch((err: unknown) => {
    const where = config.database.kind === 'sqlite' ? config.database.file : redactUrl(config.database.url);
    throw new ConfigError(`database: cannot open ${config.database.kind} ${where}: ${(err as Error).message}`);
  });
  let sshKeys: SshKeys;
  try {
    sshKeys = loadSshKeys(config.dataDir);
  } catch (err) {
    await store.close();
    throw new ConfigError(`dataDir: cannot read or create the SSH keys in ${join(config.dataDir, 'ssh')}: ${(err as Error).message}`);
  }
  const runtimeLog = lateLog();
  const placed: Placed | undefined = await (options.runtime ? options.runtime(store).then((r): Placed => ({ runtime: r.runtime, machines: [r.machine] })) : createRuntime(config, store, sshKeys, runtimeLog)).catch(async (err: unknown) => {
    await store.close();
    throw err;
  });
  const identity = createIdentity({
    store,
    sessionTtlSeconds: config.auth.sessionTtlSeconds,
    loginAttempts: config.auth.loginAttempts,
    loginWindowSeconds: config.auth.loginWindowSeconds,
    loginBackoffMaxSeconds: config.auth.loginBackoffMaxSeconds,
    header: config.auth.header,
    headerPrefix: config.auth.headerPrefix,
    trustedProxies: config.auth.trustedProxies,
    headerAllow: config.auth.headerAllow,
    defaultQuota: config.defaultQuota,
  });
  // each provider's discovery document is read now: a wrong or unreachable issuer stops the start with the reason
  /** what is open so far, closed when the start fails */
  const abandon = async () => {
    await placed?.runtime.close?.().catch(() => undefined);
    await store.close().catch(() => undefined);
  };
  const oidc = config.auth.oidc.length > 0 ? await createOidc(config.auth.oidc).catch(async (err: unknown) => {
    await abandon();
    throw err instanceof OidcDiscoveryFailed ? new ConfigError(err.message) : err;
  }) : undefined;
  const https = config.tls ? { key: readConfigFile('tls.key', config.tls.key), cert: readConfigFile('tls.cert', config.tls.cert) } : null;
  const cookies = createCookies({ https: Boolean(https), publicUrl: config.publicUrl });
  const sshMetrics = createSshMetrics();
  // created once Fastify's logger exists; requests arriving before that reach the API alone
  let proxy: Proxy | undefined = undefined;
  let ssh: SshAccess | undefined = undefined;
  const portal = createPortal(options.portalDir ? { dir: options.portalDir } : {});
  const app = Fastify({
    // The proxy answers workspace traffic before Fastify's routing: it is the hot path, and it streams.
    serverFactory: (handler) => {
      const dispatch = (req: IncomingMessage, res: ServerResponse) => {
        const matched = proxy?.match(req);
        if (matched !== undefined) void proxy!.handle(req, res, matched);
        else if (portal.match(req)) portal.handle(req, res);
        else handler(req, res);
      };
      const server = https ? createHttpsServer(https, dispatch) : createHttpServer(dispatch);
      server.on('upgrade', (req: IncomingMessage, socket, head: Buffer) => {
        if (ssh?.upgrade(req, socket, head)) return;
        if (proxy) void proxy.upgrade(req, socket, head);
        else socket.destroy();
      });
      return server;
    },
    bodyLimit: config.bodyLimit,
    // Event streams stay open; shutting down must not wait for every browser tab.
    forceCloseConnections: true,
    // The audit log records every change; per-request lines would only slow the hot path.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: config.auth.trustedProxies.length > 0 ? config.auth.trustedProxies : false,
    logger: {
      level: config.logLevel,
      ...(config.logFormat === 'text' ? { stream: textLogStream() } : {}),
      redact: ['req.headers.authorization', 'req.headers.cookie', 'err.config.headers'],
    },
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
  }) as unknown as FastifyInstance;
  runtimeLog.target = app.log;
  // the signing keys open now: a key file that does not open them stops the start with the reason
  const workload = config.workloadIdentity
    ? await createWorkloadIdentity({ store, ...config.workloadIdentity, log: app.log }).catch(async (err: unknown) => {
        await abandon();
        throw err instanceof SigningKeysSealedElsewhere ? new ConfigError(err.message) : err;
      })
    : undefined;
  // a runtime that takes tokens from Atrium (local) gets them; Kubernetes projects its own
  const workloadTokens = workload && placed?.runtime.workloadToken ? createWorkloadTokenSync({ store, runtime: placed.runtime, issuer: workload, log: app.log }) : undefined;
  /** The control plane's own memory and CPU, under the names Prometheus' client libraries use. */
  const processMetrics = () => {
    const m = process.memoryUsage();
    const cpu = process.cpuUsage();
    return [
      '# HELP process_resident_memory_bytes Resident memory size in bytes.', '# TYPE process_resident_memory_bytes gauge', `process_resident_memory_bytes ${m.rss}`,
      '# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.', '# TYPE process_cpu_seconds_total counter', `process_cpu_seconds_total ${(cpu.user + cpu.system) / 1e6}`,
      '# HELP nodejs_heap_size_total_bytes Process heap size from Node.js in bytes.', '# TYPE nodejs_heap_size_total_bytes gauge', `nodejs_heap_size_total_bytes ${m.heapTotal}`,
      '# HELP nodejs_heap_size_used_bytes Process heap size used from Node.js in bytes.', '# TYPE nodejs_heap_size_used_bytes gauge', `nodejs_heap_size_used_bytes ${m.heapUsed}`,
      '# HELP nodejs_external_memory_bytes Node.js external memory size in bytes.', '# TYPE nodejs_external_memory_bytes gauge', `nodejs_external_memory_bytes ${m.external}`,
      '',
    ].join('\n');
  };
  const workloadMetrics = () =>
    workload
      ? ['# HELP atrium_workload_tokens_issued_total Workload identity tokens issued to workspaces since start.', '# TYPE atrium_workload_tokens_issued_total counter', `atrium_workload_tokens_issued_total ${workload.issuedTotal}`, ''].join('\n')
      : '';
  proxy = createProxy({
    store,
    identity,
    cookies,
    runtime: placed?.runtime,
    log: app.log,
    isolation: config.proxy.isolation,
    appsDomain: config.proxy.appsDomain,
    https: Boolean(https),
    publicUrl: config.publicUrl,
    authHeader: config.auth.header,
    activityFlushMs: config.proxy.activityFlushMs,
    responseTimeoutMs: config.proxy.responseTimeoutMs,
    appSessionTtlSeconds: config.auth.sessionTtlSeconds,
    relayAgent: config.runtime.agent ?? DEFAULT_AGENT,
    maxTunnelsPerUser: config.proxy.maxTunnelsPerUser,
    maxTunnelsPerWorkspace: config.proxy.maxTunnelsPerWorkspace,
    tunnelStallSeconds: config.proxy.tunnelStallSeconds,
    tunnelIdleSeconds: config.proxy.tunnelIdleSeconds,
    listenHost: config.listen.host,
    metrics: config.metrics,
    moreMetrics: { render: () => sshMetrics.render() + workloadMetrics() + processMetrics() },
  });
  const profilesByName = new Map(config.profiles.map((p) => [p.name, p]));
  ssh = createSshAccess({
    store,
    identity,
    runtime: placed?.runtime,
    keys: sshKeys,
    activity: proxy.activity,
    metrics: sshMetrics,
    log: app.log,
    gateway: config.ssh.enabled ? { host: config.ssh.host, port: config.ssh.port } : undefined,
    handshakeTimeoutMs: config.ssh.handshakeTimeoutMs,
    idleTimeoutSeconds: config.ssh.idleTimeoutSeconds,
    stallSeconds: config.proxy.tunnelStallSeconds,
    maxSessionsPerUser: config.ssh.maxSessionsPerUser,
    relayAgent: config.runtime.agent ?? DEFAULT_AGENT,
    // start on connect: the API's admission, and an audit row like the API's
    async startWorkspace(ws, auth) {
      const target = `${ws.team}/${ws.name}`;
      try {
        await store.workspaces.start(ws, restartProfile(ws, profilesByName), placed?.machines);
        await store.audit.record({ actorId: auth.user.id, actor: auth.user.username, action: 'workspace.start', target, result: 'ok', status: 200, ip: '', details: { via: 'ssh' } });
      } catch (err) {
        const e = err as { code?: string; status?: number; message: string };
        await store.audit.record({ actorId: auth.user.id, actor: auth.user.username, action: 'workspace.start', target, result: e.code ?? 'internal', status: e.status ?? 500, ip: '', details: { via: 'ssh', message: e.message } });
        throw err;
      }
    },
  });
  const sshAccess = ssh;
  const registered: Server['registered'] = [];
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) registered.push({ method, url: r.url });
  });
  // one list thread per CPU, up to 4 (two measured ahead of one on 2 CPUs); an in-memory SQLite database exists on one connection only
  const lists =
    config.database.kind === 'sqlite' && config.database.file === ':memory:' ? inProcessLists(store) : workerLists(config.database, Math.min(4, availableParallelism()));
  const routes = registerApi(app, {
    lists,
    store,
    identity,
    cookies,
    profiles: config.profiles,
    defaultQuota: config.defaultQuota,
    https: Boolean(https),
    sessionTtlSeconds: config.auth.sessionTtlSeconds,
    version: VERSION,
    log: app.log,
    logs: placed?.runtime,
    images: placed?.runtime.images,
    oidc,
    publicUrl: config.publicUrl,
    machines: placed?.machines ?? [],
    clusters: config.runtime.kind === 'kubernetes' ? config.kubernetes.clusters.map((c) => ({ name: c.name, kind: 'kubernetes' as const })) : [{ name: 'local', kind: 'local' as const }],
    kubernetes: { config: config.kubernetes, stopGraceSeconds: stopGraceSeconds(config), workspaceKeys: workspaceKeys(sshKeys) },
    ssh: {
      gateway: (requestHost) => {
        const port = sshAccess.port;
        if (port === undefined) return null;
        // listening on every address, the name people reached the API by is the one that reaches the gateway too
        const wildcard = config.ssh.host === '0.0.0.0' || config.ssh.host === '::';
        const host = config.ssh.publicHost ?? (config.publicUrl ? new URL(config.publicUrl).hostname : wildcard && requestHost ? requestHost.replace(/^\[|\]$/g, '') : shownHost(config.ssh.host));
        return { host, port, hostKey: sshKeys.gateway.publicKey, fingerprint: sshKeys.gateway.fingerprint };
      },
      hostKey: (id) => {
        const k = sshKeys.workspaceHost(id);
        return { publicKey: k.publicKey, fingerprint: k.fingerprint };
      },
    },
    accessSettled: () => reconciler?.sshAccessSettled() ?? Promise.resolve(),
    workload: workload && { identity: workload, tokensFromAtrium: workloadTokens !== undefined, held: (id) => workloadTokens?.current(id) },
  });
  const reconciler = placed
    ? createReconciler({
        store,
        runtime: placed.runtime,
        log: app.log,
        readinessTimeoutMs: config.runtime.readinessTimeoutMs,
        sshKeys: workspaceKeys(sshKeys),
        ...(workloadTokens ? { workloadTokens } : {}),
      })
    : undefined;
  const culler = placed
    ? createCuller({ store, runtime: placed.runtime, log: app.log, everyMs: config.runtime.cullEveryMs, warnBeforeMs: config.runtime.idleWarningMs, cpuActive: config.runtime.cpuActive })
    : undefined;
  const sweep = setInterval(() => void store.credentials.sessions.removeExpired().catch((err: unknown) => app.log.error({ err }, 'session sweep failed')), 3600_000);
  // clusters gain and lose nodes: admission places on what their node watches show now
  const capacityRefresh = placed?.refresh && setInterval(() => void placed.refresh!().catch((err: unknown) => app.log.error({ err }, 'reading cluster capacity failed')), 30_000);
  capacityRefresh?.unref();
  sweep.unref();
  // a team's quota, members or deletion reach its namespaces at once, not at its next workspace start; every 10 minutes
  // too, for changes another control-plane process made
  const tenants = placed?.syncTenants && coalesced(placed.syncTenants);
  const unsubscribeTenants = tenants && store.onTeamChange(() => void tenants.run());
  const tenantSweep = tenants && setInterval(() => void tenants.run(), 600_000);
  tenantSweep?.unref();
  // volumes: deleted ones' storage goes, grown ones grow (on Kubernetes: their claims), at once and every 10 minutes
  const runtimeForVolumes = placed?.runtime;
  const volumeSync =
    runtimeForVolumes?.syncVolumes &&
    coalesced(async () => {
      const all = await store.volumes.all();
      await runtimeForVolumes.syncVolumes!(all.map((v) => ({ id: v.id, team: v.team, name: v.name, sizeBytes: v.sizeBytes, sharedWith: v.sharedWith.map((t) => t.name) }))).catch((err: unknown) => app.log.warn({ err }, 'volume sync failed'));
    });
  const unsubscribeVolumes = volumeSync && store.onVolumeChange(() => void volumeSync.run());
  const volumeSweep = volumeSync && setInterval(() => void volumeSync.run(), 600_000);
  volumeSweep?.unref();
  void volumeSync?.run();

  const server: Server = {
    app,
    store,
    identity,
    routes,
    registered,
    portalBuilt: portal.built,
    config,
    runtime: placed?.runtime,
    reconciler,
    culler,
    proxy,
    ssh: sshAccess,
    sshKeys,
    workloadIdentity: workload,
    url: '',
    async listen() {
      const { host, port } = config.listen;
      if (config.proxy.isolation === 'single-origin') {
        app.log.warn('proxy.isolation is single-origin: every workspace is served on the portal\'s origin, so code in one workspace can act with the credentials of whoever opens it (their session, their other workspaces); use origin isolation unless every workspace runs trusted code');
      }
      if (!https && !isLoopback(host)) {
        app.log.warn(`listening on ${host} without TLS: passwords and tokens cross the network in clear text; set tls.cert and tls.key`);
      }
      if (!https && !config.publicUrl?.startsWith('https:') && config.proxy.appsDomain !== 'localhost') {
        app.log.warn(`workspaces are served on *.${config.proxy.appsDomain} over plain HTTP: a page there can set cookies for the whole domain, which Atrium refuses to read when they shadow its own (the person must then retry once); with TLS its cookies cannot be shadowed at all`);
      }
      await app.listen({ host, port }).catch((err: unknown) => {
        const why = (err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? 'another process listens there (set listen.port or --port)' : (err as Error).message;
        throw new ConfigError(`listen: cannot listen on ${host}:${port}: ${why}`);
      });
      const addr = app.server.address();
      const actualPort = typeof addr === 'object' && addr ? addr.port : port;
      server.url = `${https ? 'https' : 'http'}://${urlHost(host)}:${actualPort}`;
      // the issuer is the URL verifiers reach Atrium by: the public URL, or the one it listens on
      workload?.setIssuer(config.publicUrl ?? server.url);
      await sshAccess.listen().catch(async (err: unknown) => {
        await app.close();
        const why = (err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? 'another process listens there (set ssh.port or --ssh-port, or ssh.enabled: false)' : (err as Error).message;
        throw new ConfigError(`ssh: cannot listen on ${config.ssh.host}:${config.ssh.port}: ${why}`);
      });
      if (sshKeys.gatewayCreated) app.log.info(`created the SSH gateway's host key ${sshKeys.gateway.fingerprint} (${join(config.dataDir, 'ssh', 'ssh_host_ed25519_key')})`);
      // Adoption can take a while with many sandboxes; the API answers meanwhile (each workspace is reconciled one step at a time).
      void reconciler?.start().catch((err: unknown) => app.log.error({ err }, 'the reconciler could not start'));
      culler?.start();
      void tenants?.run();
      return server.url;
    },
    async close() {
      clearInterval(sweep);
      unsubscribeTenants?.();
      unsubscribeVolumes?.();
      if (volumeSweep) clearInterval(volumeSweep);
      await volumeSync?.idle();
      clearInterval(tenantSweep);
      await tenants?.idle();
      if (capacityRefresh) clearInterval(capacityRefresh);
      await sshAccess.close();
      await app.close();
      await proxy.close();
      await culler?.stop();
      await reconciler?.stop();
      await placed?.runtime.close?.();
      await lists.close();
      await store.close();
    },
  };
  return server;
}

import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TObject, TSchema } from '@sinclair/typebox';
import { parse as parseYaml } from 'yaml';
import {
  parseBytes,
  parseCpu,
  parseDuration,
  profileFromSpec,
  quotaFromSpec,
  DomainError,
  type Profile,
  type Quota,
} from '../domain/index.js';
import { createAjv, describeErrors } from '../validation/index.js';
import { ConfigSchema, DEFAULT_PROFILES, type Config } from './schema.js';

/** Configuration after validation, with sizes and durations in internal units. */
export interface ResolvedConfig {
  raw: Config;
  listen: { host: string; port: number };
  publicUrl: string | undefined;
  tls: { cert: string; key: string } | undefined;
  dataDir: string;
  database: { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string; poolSize: number };
  auth: {
    header: string | undefined;
    headerPrefix: string;
    trustedProxies: string[];
    sessionTtlSeconds: number;
    loginAttempts: number;
    loginWindowSeconds: number;
    loginBackoffMaxSeconds: number;
    headerAllow: AllowList | undefined;
    oidc: OidcProviderConfig[];
  };
  admin: { username: string; password: string | undefined };
  bodyLimit: number;
  logLevel: string;
  /** how server log lines are written: text for people, JSON for collectors */
  logFormat: 'text' | 'json';
  runtime: {
    kind: 'local' | 'kubernetes' | 'none';
    reserve: { cpuMilli: number; memoryBytes: number };
    pids: number;
    uidBase: number;
    stopGraceMs: number;
    readinessTimeoutMs: number;
    cullEveryMs: number;
    idleWarningMs: number;
    cpuActive: number;
    agent: string | undefined;
    gpus: Array<{ index: number; type: string; uuid: string; path: string }>;
    egress: Config['runtime']['egress'];
    imageGraceMs: number;
  };
  proxy: {
    isolation: 'origin' | 'single-origin';
    appsDomain: string;
    activityFlushMs: number;
    responseTimeoutMs: number;
    maxTunnelsPerUser: number;
    maxTunnelsPerWorkspace: number;
    /** 0: never */
    tunnelStallSeconds: number;
    tunnelIdleSeconds: number;
  };
  ssh: {
    enabled: boolean;
    host: string;
    port: number;
    publicHost: string | undefined;
    handshakeTimeoutMs: number;
    /** 0: never */
    idleTimeoutSeconds: number;
    maxSessionsPerUser: number;
  };
  /** the clusters and how Atrium renders its objects on them */
  kubernetes: Config['kubernetes'] & { tokenAudiences: string[]; tokenExpirationSeconds: number; startTimeoutMs: number };
  /** tokens for workloads (null: none are issued) */
  workloadIdentity: { audiences: string[]; tokenLifetimeMs: number; keyRotationMs: number; keyFile: string } | null;
  metrics: { open: boolean; token: string | undefined };
  defaultQuota: Quota;
  profiles: Profile[];
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Source = string;

function snake(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown) {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path.at(-1)!] = value;
}

function leafValue(schema: TSchema, raw: string): unknown {
  const type = (schema as { type?: string }).type;
  if (type === 'string') return raw;
  if (type === 'integer' || type === 'number') return raw.trim() === '' ? raw : Number(raw);
  if (type === 'boolean') return raw === 'true' ? true : raw === 'false' ? false : raw;
  if (type === 'array' && !raw.trim().startsWith('[')) {
    return raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  }
  return parseYaml(raw) as unknown;
}

/** Every `ATRIUM_*` variable the schema knows, e.g. `auth.trustedProxies` ↔ `ATRIUM_AUTH_TRUSTED_PROXIES`. */
export function envKeys(schema: TObject = ConfigSchema, prefix: string[] = []): Array<{ env: string; path: string[]; schema: TSchema }> {
  const out: Array<{ env: string; path: string[]; schema: TSchema }> = [];
  for (const [key, sub] of Object.entries(schema.properties)) {
    const path = [...prefix, key];
    const isObject = (sub as { type?: string }).type === 'object' && 'properties' in sub && Object.keys((sub as TObject).properties).length > 0;
    if (isObject && !('patternProperties' in sub)) out.push(...envKeys(sub as TObject, path));
    else out.push({ env: `ATRIUM_${path.map(snake).join('_')}`, path, schema: sub });
  }
  return out;
}

export interface ConfigInputs {
  /** path of the YAML file; ATRIUM_CONFIG when absent */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** flag values by config path, e.g. `{ 'listen.port': 9000 }` */
  flags?: Record<string, unknown>;
}

function defaultDataDir(env: NodeJS.ProcessEnv): string {
  if (process.getuid?.() === 0) return '/var/lib/atrium';
  const base = env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(base, 'atrium');
}

/**
 * Builds the one validated configuration from the file, `ATRIUM_*` env and
 * flags (later wins). Fails with a ConfigError naming the key, the problem and
 * where the value came from.
 */
export function loadConfig(inputs: ConfigInputs = {}): ResolvedConfig {
  const env = inputs.env ?? process.env;
  const sources = new Map<string, Source>();
  let merged: Record<string, unknown> = {};

  const file = inputs.file ?? env.ATRIUM_CONFIG;
  if (file) {
    if (!existsSync(file)) throw new ConfigError(`config file ${file} does not exist`);
    let parsed: unknown;
    try {
      parsed = parseYaml(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`config file ${file}: ${(err as Error).message}`);
    }
    if (parsed !== null && parsed !== undefined) {
      if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(`config file ${file}: must be a YAML mapping`);
      merged = parsed as Record<string, unknown>;
      for (const key of Object.keys(merged)) sources.set(key, `file ${file}`);
    }
  }
  for (const { env: name, path, schema } of envKeys()) {
    const raw = env[name];
    if (raw === undefined) continue;
    let value: unknown;
    try {
      value = leafValue(schema, raw);
    } catch (err) {
      throw new ConfigError(`${path.join('.')}: cannot parse ${name}: ${(err as Error).message}`);
    }
    setPath(merged, path, value);
    sources.set(path.join('.'), `env ${name}`);
  }
  for (const [key, value] of Object.entries(inputs.flags ?? {})) {
    if (value === undefined) continue;
    setPath(merged, key.split('.'), value);
    sources.set(key, `flag --${key.split('.').at(-1)!.replace(/([A-Z])/g, '-$1').toLowerCase()}`);
  }
  if (merged.profiles === undefined) merged.profiles = structuredClone(DEFAULT_PROFILES);

  const validate = createAjv({ coerce: false }).compile(ConfigSchema);
  if (!validate(merged)) {
    const first = validate.errors![0]!;
    const path = first.instancePath.split('/').filter(Boolean);
    let origin = 'defaults';
    for (let i = path.length; i > 0; i--) {
      const found = sources.get(path.slice(0, i).join('.'));
      if (found) {
        origin = found;
        break;
      }
    }
    throw new ConfigError(`${describeErrors(validate.errors, 'config')} (from ${origin})`);
  }
  const config = merged as Config;
  return resolve_(config, env);
}

/**
 * About two connections per CPU keeps the database's cores busy without
 * queueing more runnable backends than there are cores to run them: on a
 * 2-CPU machine shared with PostgreSQL, listing workspaces at 16 requests in
 * flight, 4 connections served 5–25% more requests per second than 10
 * (alternating runs). Set `databasePoolSize` to about twice the database
 * server's cores when it runs elsewhere.
 */
function defaultPoolSize(): number {
  return Math.min(20, Math.max(4, 2 * availableParallelism()));
}

/** Who may sign in through a provider or the trusted header. */
export type AllowList = NonNullable<Config['auth']['headerAllow']>;

/** One OpenID Connect provider, its client secret read. */
export interface OidcProviderConfig {
  name: string;
  displayName: string;
  issuer: string;
  clientId: string;
  clientSecret: string | undefined;
  scopes: string[];
  groupsClaim: string;
  allow: AllowList | undefined;
  groups: Record<string, { team: string; role: 'viewer' | 'editor' | 'owner' }>;
}

/** The OIDC providers: names unique, issuers https (http only on loopback), each client secret from the config or its file. */
function oidcProviders(list: Config['auth']['oidc']): OidcProviderConfig[] {
  const seen = new Set<string>();
  return list.map((p, i) => {
    const key = `auth.oidc[${i}]`;
    if (seen.has(p.name)) throw new ConfigError(`${key}.name: ${p.name} names two providers`);
    seen.add(p.name);
    const url = new URL(p.issuer);
    if (url.protocol !== 'https:' && !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) throw new ConfigError(`${key}.issuer: ${p.issuer} must be https (http only on loopback)`);
    if (p.clientSecret !== undefined && p.clientSecretFile !== undefined) throw new ConfigError(`${key}: clientSecret and clientSecretFile are both set; keep one`);
    let clientSecret = p.clientSecret;
    if (p.clientSecretFile !== undefined) {
      try {
        clientSecret = readFileSync(p.clientSecretFile, 'utf8').trim();
      } catch (err) {
        throw new ConfigError(`${key}.clientSecretFile: cannot read ${p.clientSecretFile}: ${(err as Error).message}`);
      }
      if (!/^[\x21-\x7e]{1,4096}$/.test(clientSecret)) throw new ConfigError(`${key}.clientSecretFile: ${p.clientSecretFile} must hold one secret of printable characters`);
    }
    if (!p.scopes.includes('openid')) throw new ConfigError(`${key}.scopes: must include openid`);
    return { name: p.name, displayName: p.displayName, issuer: p.issuer, clientId: p.clientId, clientSecret, scopes: p.scopes, groupsClaim: p.groupsClaim, allow: p.allow, groups: p.groups };
  });
}

/** The scrape token for /metrics, from the config or the file it names. */
function metricsToken(m: Config['metrics']): string | undefined {
  if (m.token !== undefined && m.tokenFile !== undefined) throw new ConfigError('metrics.token and metrics.tokenFile are both set; keep one');
  if (m.tokenFile === undefined) return m.token;
  let token: string;
  try {
    token = readFileSync(m.tokenFile, 'utf8').trim();
  } catch (err) {
    throw new ConfigError(`metrics.tokenFile: cannot read ${m.tokenFile}: ${(err as Error).message}`);
  }
  if (!/^[\x21-\x7e]{16,1024}$/.test(token)) throw new ConfigError(`metrics.tokenFile: ${m.tokenFile} must hold one token of 16 to 1024 printable characters`);
  return token;
}

/** A duration's seconds where the schema refuses `never` (FiniteDuration). */
function finite(key: string, value: string): number {
  const seconds = parseDuration(value);
  if (seconds === null) throw new ConfigError(`${key}: must be a duration like 90s, 30m, 12h or 7d, not never`);
  return seconds;
}

/** A quantity the schema's pattern has already checked, parsed. */
function quantity(key: string, value: number | undefined): number {
  if (value === undefined) throw new ConfigError(`${key}: not a valid quantity`);
  return value;
}

function resolve_(config: Config, env: NodeJS.ProcessEnv): ResolvedConfig {
  try {
    const dataDir = resolve(config.dataDir ?? defaultDataDir(env));
    const profiles = config.profiles.map(profileFromSpec);
    const seen = new Set<string>();
    for (const p of profiles) {
      if (seen.has(p.name)) throw new ConfigError(`profiles: name ${p.name} is used twice`);
      seen.add(p.name);
    }
    const db = config.database;
    const database: ResolvedConfig['database'] = db.startsWith('postgres')
      ? { kind: 'postgres', url: db, poolSize: config.databasePoolSize ?? defaultPoolSize() }
      : { kind: 'sqlite', file: db === 'sqlite' ? join(dataDir, 'atrium.db') : resolve(db.slice('sqlite:'.length)) };
    if (config.auth.header && config.auth.trustedProxies.length === 0) {
      throw new ConfigError('auth.header is set but auth.trustedProxies is empty: the header would be accepted from nobody');
    }
    const clusterNames = new Set<string>();
    for (const c of config.kubernetes.clusters) {
      if (clusterNames.has(c.name)) throw new ConfigError(`kubernetes.clusters: name ${c.name} is used twice`);
      if (c.name === 'local') throw new ConfigError('kubernetes.clusters: the name local means this machine; give the cluster another name');
      clusterNames.add(c.name);
    }
    if (config.runtime.kind === 'kubernetes' && clusterNames.size === 0) {
      throw new ConfigError('runtime.kind is kubernetes but kubernetes.clusters is empty: name at least one cluster (kubeconfig and context, or in-cluster)');
    }
    const wi = config.workloadIdentity;
    if (wi.enabled && wi.audiences.length === 0) {
      throw new ConfigError('workloadIdentity.audiences is empty: name who the tokens are for (e.g. sts.amazonaws.com), or set workloadIdentity.enabled: false');
    }
    if (new Set(wi.audiences).size !== wi.audiences.length) throw new ConfigError('workloadIdentity.audiences: an audience is named twice');
    const tokenLifetimeSeconds = finite('workloadIdentity.tokenLifetime', wi.tokenLifetime);
    if (tokenLifetimeSeconds < 10 || tokenLifetimeSeconds > 86400) throw new ConfigError('workloadIdentity.tokenLifetime: must be between 10s and 24h');
    const keyRotationSeconds = finite('workloadIdentity.keyRotation', wi.keyRotation);
    if (keyRotationSeconds < 60) throw new ConfigError('workloadIdentity.keyRotation: must be at least 1m');
    // the API server refuses projected tokens shorter than 10 minutes
    if (config.runtime.kind === 'kubernetes' && wi.enabled && tokenLifetimeSeconds < 600) {
      throw new ConfigError('workloadIdentity.tokenLifetime: must be at least 10m with the Kubernetes runtime (the API server refuses shorter projected tokens)');
    }
    const startTimeoutMs = finite('kubernetes.startTimeout', config.kubernetes.startTimeout) * 1000;
    if (startTimeoutMs < 10_000) throw new ConfigError('kubernetes.startTimeout: must be at least 10s (a pod takes seconds to be made and started on any cluster)');
    return {
      raw: config,
      listen: config.listen,
      publicUrl: config.publicUrl,
      tls: config.tls,
      dataDir,
      database,
      auth: {
        header: config.auth.header?.toLowerCase(),
        headerPrefix: config.auth.headerPrefix,
        trustedProxies: config.auth.trustedProxies,
        sessionTtlSeconds: finite('auth.sessionTtl', config.auth.sessionTtl),
        loginAttempts: config.auth.loginAttempts,
        loginWindowSeconds: finite('auth.loginWindow', config.auth.loginWindow),
        loginBackoffMaxSeconds: Math.max(1, finite('auth.loginBackoffMax', config.auth.loginBackoffMax)),
        headerAllow: config.auth.headerAllow,
        oidc: oidcProviders(config.auth.oidc),
      },
      admin: { username: config.admin.username, password: config.admin.password },
      bodyLimit: config.limits.bodyBytes,
      logLevel: config.logLevel,
      logFormat: config.logFormat === 'auto' ? (process.stdout.isTTY ? 'text' : 'json') : config.logFormat,
      runtime: {
        kind: config.runtime.kind,
        reserve: {
          cpuMilli: quantity('runtime.reserve.cpu', parseCpu(config.runtime.reserve.cpu)),
          memoryBytes: quantity('runtime.reserve.memory', parseBytes(config.runtime.reserve.memory)),
        },
        pids: config.runtime.pids,
        uidBase: config.runtime.uidBase,
        stopGraceMs: finite('runtime.stopGrace', config.runtime.stopGrace) * 1000,
        readinessTimeoutMs: finite('runtime.readinessTimeout', config.runtime.readinessTimeout) * 1000,
        cullEveryMs: Math.max(1, finite('runtime.cullEvery', config.runtime.cullEvery)) * 1000,
        // never: no warning before a workspace is stopped
        idleWarningMs: (parseDuration(config.runtime.idleWarning) ?? 0) * 1000,
        cpuActive: config.runtime.cpuActive,
        agent: config.runtime.agent,
        gpus: config.runtime.gpus,
        egress: config.runtime.egress,
        imageGraceMs: finite('runtime.imageGrace', config.runtime.imageGrace) * 1000,
      },
      proxy: {
        isolation: config.proxy.isolation,
        appsDomain: config.proxy.appsDomain,
        activityFlushMs: Math.max(1, finite('proxy.activityFlush', config.proxy.activityFlush)) * 1000,
        responseTimeoutMs: Math.max(1, finite('proxy.responseTimeout', config.proxy.responseTimeout)) * 1000,
        maxTunnelsPerUser: config.proxy.maxTunnelsPerUser,
        maxTunnelsPerWorkspace: config.proxy.maxTunnelsPerWorkspace,
        // never: 0, which the tunnels read as no limit
        tunnelStallSeconds: parseDuration(config.proxy.tunnelStallTimeout) ?? 0,
        tunnelIdleSeconds: parseDuration(config.proxy.tunnelIdleTimeout) ?? 0,
      },
      ssh: {
        enabled: config.ssh.enabled,
        host: config.ssh.host ?? config.listen.host,
        port: config.ssh.port,
        publicHost: config.ssh.publicHost,
        handshakeTimeoutMs: Math.max(1, finite('ssh.handshakeTimeout', config.ssh.handshakeTimeout)) * 1000,
        idleTimeoutSeconds: parseDuration(config.ssh.idleTimeout) ?? 0,
        maxSessionsPerUser: config.ssh.maxSessionsPerUser,
      },
      kubernetes: { ...config.kubernetes, tokenAudiences: wi.enabled ? wi.audiences : [], tokenExpirationSeconds: Math.max(600, tokenLifetimeSeconds), startTimeoutMs },
      workloadIdentity: wi.enabled
        ? { audiences: wi.audiences, tokenLifetimeMs: tokenLifetimeSeconds * 1000, keyRotationMs: keyRotationSeconds * 1000, keyFile: wi.keyFile ? resolve(wi.keyFile) : join(dataDir, 'secrets', 'workload-identity.key') }
        : null,
      metrics: { open: config.metrics.open, token: metricsToken(config.metrics) },
      defaultQuota: quotaFromSpec(config.defaults.quota),
      profiles,
    };
  } catch (err) {
    if (err instanceof DomainError) throw new ConfigError(err.message);
    throw err;
  }
}

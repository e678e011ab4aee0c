import { Type, type Static } from '@sinclair/typebox';
import { InvalidInput } from './errors.js';
import { NAME_PATTERN, NAME_RULE } from './names.js';
import { formatBytes, formatCpu, parseBytes, parseCpu, QUANTITY_PATTERN } from './quantity.js';
import type { Profile, Quota } from './quota.js';
import { ENVIRONMENT_KINDS, TIERS } from './workspace.js';
import { VolumeMountSpec } from './volumes.js';

/**
 * Wire schemas shared by the config file and the API: the one place where the
 * people-facing shapes of names, quantities, quotas and profiles are defined.
 */
export const Name = Type.String({ pattern: NAME_PATTERN, minLength: 2, maxLength: 32, description: NAME_RULE });
export const Quantity = Type.String({
  pattern: QUANTITY_PATTERN,
  maxLength: 32,
  description: 'a Kubernetes quantity, e.g. 500m, 2, 4Gi',
});
export const GpuType = Type.String({
  pattern: '^[a-z0-9][a-z0-9.-]{0,62}$',
  description: 'GPU model name, e.g. a100, t4, h100-80gb',
});
export const Duration = Type.String({
  pattern: '^(never|0|[0-9]{1,6}(s|m|h|d))$',
  description: 'a duration like 90s, 30m, 12h, 7d, or never',
});

/** A duration for settings where `never` makes no sense (a session that never ends, a stop that waits forever). */
export const FiniteDuration = Type.String({
  pattern: '^(0|[0-9]{1,6}(s|m|h|d))$',
  description: 'a duration like 90s, 30m, 12h or 7d (never is not allowed here)',
});

export const QuotaSpec = Type.Object(
  {
    cpu: Quantity,
    memory: Quantity,
    storage: Quantity,
    workspaces: Type.Integer({ minimum: 0, maximum: 100000 }),
    gpu: Type.Record(GpuType, Type.Integer({ minimum: 0, maximum: 100000 }), {
      description: 'GPU type → count; an unlisted type allows none',
      additionalProperties: false,
    }),
  },
  { additionalProperties: false },
);
export type QuotaSpec = Static<typeof QuotaSpec>;

const Range = Type.Object(
  { guarantee: Quantity, limit: Quantity },
  { additionalProperties: false, description: 'guaranteed (request) and limit' },
);

/** An IPv4 range, e.g. 10.20.0.0/16. */
export const Ipv4Cidr = Type.String({
  pattern: '^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}/([0-9]|[12][0-9]|3[0-2])$',
  description: 'an IPv4 range, e.g. 10.20.0.0/16',
});

/**
 * Where a workspace may connect: `none` (nowhere), `public` (public
 * addresses; never private, link-local or metadata ones, the host or other
 * workspaces), or `{allow: [ranges], public?: true}`: the listed ranges (a
 * team's data lake, even at private addresses), and public addresses too
 * when `public` is set.
 */
export const EgressSpec = Type.Union(
  [
    Type.Literal('none'),
    Type.Literal('public'),
    Type.Object({ allow: Type.Array(Ipv4Cidr, { minItems: 1, maxItems: 64 }), public: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
  ],
  { default: 'none', description: 'none, public, or {allow: [IPv4 ranges], public?: true}' },
);
export type Egress = Static<typeof EgressSpec>;

/** What an egress setting lets through: public addresses or not, and the ranges allowed besides. */
export function egressOf(e: Egress): { public: boolean; allow: string[] } {
  if (e === 'none') return { public: false, allow: [] };
  if (e === 'public') return { public: true, allow: [] };
  return { public: e.public === true, allow: [...e.allow] };
}

/** Whether the workspace needs a way out at all. */
export const needsEgress = (e: Egress): boolean => e !== 'none';

/** For people: `none`, `public`, `10.20.0.0/16` or `public and 10.20.0.0/16, 10.30.0.0/16`. */
export function describeEgress(e: Egress): string {
  const { public: pub, allow } = egressOf(e);
  if (allow.length === 0) return pub ? 'public' : 'none';
  return `${pub ? 'public and ' : ''}${allow.join(', ')}`;
}

export const ProfileSpec = Type.Object(
  {
    name: Name,
    displayName: Type.String({ minLength: 1, maxLength: 80 }),
    description: Type.String({ maxLength: 500, default: '' }),
    environment: Type.Union([
      Type.Union(ENVIRONMENT_KINDS.filter((k) => k !== 'custom').map((k) => Type.Literal(k))),
      Type.Object(
        {
          kind: Type.Literal('custom'),
          command: Type.Array(Type.String({ minLength: 1, maxLength: 4096 }), { minItems: 1, maxItems: 64 }),
          port: Type.Integer({ minimum: 1, maximum: 65535 }),
        },
        { additionalProperties: false },
      ),
    ]),
    image: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
    cpu: Range,
    memory: Range,
    gpu: Type.Optional(
      Type.Object({ count: Type.Integer({ minimum: 1, maximum: 64 }), type: GpuType }, { additionalProperties: false }),
    ),
    storage: Quantity,
    tier: Type.Union(TIERS.map((t) => Type.Literal(t)), { default: 'standard' }),
    egress: EgressSpec,
    idleTimeout: Type.Optional(Duration),
    /** off by default: a forwarded agent lets code in the workspace log in wherever the person's keys open, while they are connected */
    agentForwarding: Type.Optional(Type.Boolean({ description: 'let SSH sessions forward the connecting person\'s ssh-agent into the workspace (`ssh -A`)' })),
    teams: Type.Optional(Type.Array(Name, { maxItems: 10000 })),
    /** volumes every workspace of the profile mounts: the team's own by name, or `<team>/<name>` datasets published to it */
    volumes: Type.Optional(Type.Array(VolumeMountSpec, { maxItems: 16 })),
  },
  { additionalProperties: false },
);
export type ProfileSpec = Static<typeof ProfileSpec>;

export function parseDuration(d: string): number | null {
  if (d === 'never') return null;
  if (d === '0') return 0;
  const n = Number(d.slice(0, -1));
  const unit = d.at(-1)!;
  return n * ({ s: 1, m: 60, h: 3600, d: 86400 } as Record<string, number>)[unit]!;
}

export function formatDuration(seconds: number | null): string {
  if (seconds === null) return 'never';
  if (seconds === 0) return '0';
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60]] as const) {
    if (seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}

function need<T>(value: T | undefined, what: string, raw: string): T {
  if (value === undefined) throw new InvalidInput(`${what}: ${JSON.stringify(raw)} is not a quantity this platform can hold (too large or too precise)`);
  return value;
}

export function quotaFromSpec(spec: QuotaSpec): Quota {
  return {
    cpuMilli: need(parseCpu(spec.cpu), 'cpu', spec.cpu),
    memoryBytes: need(parseBytes(spec.memory), 'memory', spec.memory),
    storageBytes: need(parseBytes(spec.storage), 'storage', spec.storage),
    workspaces: spec.workspaces,
    gpus: { ...spec.gpu },
  };
}

export function quotaToSpec(q: Quota): QuotaSpec {
  return {
    cpu: formatCpu(q.cpuMilli),
    memory: formatBytes(q.memoryBytes),
    storage: formatBytes(q.storageBytes),
    workspaces: q.workspaces,
    gpu: { ...q.gpus },
  };
}

/** Validates the relations a schema cannot express (guarantee ≤ limit, non-zero sizes). */
export function profileFromSpec(spec: ProfileSpec): Profile {
  const where = `profile ${spec.name}`;
  const cpuRequest = need(parseCpu(spec.cpu.guarantee), `${where} cpu.guarantee`, spec.cpu.guarantee);
  const cpuLimit = need(parseCpu(spec.cpu.limit), `${where} cpu.limit`, spec.cpu.limit);
  const memRequest = need(parseBytes(spec.memory.guarantee), `${where} memory.guarantee`, spec.memory.guarantee);
  const memLimit = need(parseBytes(spec.memory.limit), `${where} memory.limit`, spec.memory.limit);
  const storage = need(parseBytes(spec.storage), `${where} storage`, spec.storage);
  if (cpuLimit <= 0 || memLimit <= 0 || storage <= 0) {
    throw new InvalidInput(`${where}: cpu.limit, memory.limit and storage must be greater than zero`);
  }
  if (cpuRequest > cpuLimit) throw new InvalidInput(`${where}: cpu.guarantee ${spec.cpu.guarantee} exceeds cpu.limit ${spec.cpu.limit}`);
  if (memRequest > memLimit) {
    throw new InvalidInput(`${where}: memory.guarantee ${spec.memory.guarantee} exceeds memory.limit ${spec.memory.limit}`);
  }
  const env = spec.environment;
  return {
    name: spec.name,
    displayName: spec.displayName,
    description: spec.description ?? '',
    environment: typeof env === 'string' ? { kind: env } : { kind: 'custom', command: env.command, port: env.port },
    ...(spec.image === undefined ? {} : { image: spec.image }),
    resources: {
      cpuRequestMilli: cpuRequest,
      cpuLimitMilli: cpuLimit,
      memoryRequestBytes: memRequest,
      memoryLimitBytes: memLimit,
      gpuCount: spec.gpu?.count ?? 0,
      gpuType: spec.gpu?.type ?? null,
      storageBytes: storage,
    },
    tier: spec.tier ?? 'standard',
    egress: spec.egress ?? 'none',
    idleTimeoutSeconds: parseDuration(spec.idleTimeout ?? 'never'),
    agentForwarding: spec.agentForwarding ?? false,
    teams: spec.teams ?? null,
    volumes: spec.volumes ?? [],
  };
}

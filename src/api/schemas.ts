import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Duration, EgressSpec, GpuType, Name, ProfileSpec, Quantity, QuotaSpec, READ_ONLY_FOR, VolumeMountSpec } from '../domain/index.js';
import { DESIRED_STATES, ERROR_CODES, PHASES, ROLES, TIERS, ENVIRONMENT_KINDS, type ErrorCode } from '../domain/index.js';

/**
 * The API's schemas: each validates requests, types handlers and the CLI's
 * client, and becomes the OpenAPI document. Objects reject unknown fields.
 */
export { Name, Quantity, QuotaSpec, ProfileSpec, Duration, GpuType };

const strict = { additionalProperties: false } as const;
/**
 * `T | null` as a type array rather than anyOf: the same meaning to a
 * validator, but the response serializer then writes it directly instead of
 * trying each branch, which matters on lists of hundreds of items.
 */
const Nullable = <T extends TSchema>(t: T) => {
  const s = t as unknown as { type?: unknown; enum?: unknown[] };
  if (typeof s.type !== 'string') return Type.Unsafe<Static<T> | null>(Type.Union([t, Type.Null()]));
  return Type.Unsafe<Static<T> | null>({ ...t, type: [s.type, 'null'], ...(s.enum ? { enum: [...s.enum, null] } : {}) });
};
const Time = Type.String({ format: 'date-time', description: 'RFC 3339 time' });
const Literals = <T extends readonly string[]>(values: T, description?: string) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...(description ? { description } : {}) });

export const RoleSchema = Literals(ROLES, 'owner (members, settings, all workspaces), editor (own workspaces), viewer (see only)');
export const PhaseSchema = Literals(PHASES);
export const DesiredSchema = Literals(DESIRED_STATES);

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.Unsafe<ErrorCode>(Type.String({ enum: Object.keys(ERROR_CODES), description: 'stable machine-readable code from the error catalogue, e.g. quota_exceeded' })),
      message: Type.String({ description: 'what went wrong, for people' }),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
  },
  { $id: 'Error' },
);
export type ErrorBody = Static<typeof ErrorBody>;

export const Pagination = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
    cursor: Type.Optional(Type.String({ maxLength: 512, description: 'nextCursor from the previous page' })),
  },
  strict,
);

export const pageOf = <T extends TSchema>(item: T) =>
  Type.Object({ items: Type.Array(item), nextCursor: Nullable(Type.String({ description: 'pass as ?cursor= for the next page' })) });

export const TeamParams = Type.Object({ team: Name }, strict);
export const WorkspaceParams = Type.Object({ team: Name, ws: Name }, strict);
export const UserParams = Type.Object({ user: Name }, strict);
export const PoolParams = Type.Object({ pool: Name }, strict);

export const UserView = Type.Object({
  id: Type.String(),
  username: Type.String(),
  email: Nullable(Type.String()),
  displayName: Type.String(),
  admin: Type.Boolean(),
  disabled: Type.Boolean(),
  sso: Type.Boolean({ description: 'registered through single sign-on' }),
  externalSubject: Nullable(Type.String({ description: 'the identity the SSO proxy gave, kept for SSO users' })),
  createdAt: Time,
});
export type UserView = Static<typeof UserView>;

export const TeamView = Type.Object({
  name: Type.String(),
  displayName: Type.String(),
  personal: Type.Boolean({ description: "a user's personal team" }),
  sensitive: Type.Boolean({ description: 'may only use sandboxed profiles' }),
  quota: QuotaSpec,
  role: Nullable(RoleSchema),
  createdAt: Time,
});
export type TeamView = Static<typeof TeamView>;

export const MeView = Type.Object({
  user: UserView,
  teams: Type.Array(Type.Object({ name: Type.String(), role: RoleSchema, personal: Type.Boolean() })),
  via: Literals(['session', 'token', 'header', 'ssh-key'] as const),
});
export type MeView = Static<typeof MeView>;

export const MemberView = Type.Object({
  username: Type.String(),
  role: RoleSchema,
  since: Time,
  group: Nullable(Type.String({ description: 'the identity-provider group that grants this membership (`<provider>:<group>`), kept in step at each sign-in; null when granted by hand' })),
});
export type MemberView = Static<typeof MemberView>;

export const ResourcesView = Type.Object({
  cpu: Type.Object({ guarantee: Quantity, limit: Quantity }),
  memory: Type.Object({ guarantee: Quantity, limit: Quantity }),
  gpu: Nullable(Type.Object({ count: Type.Integer(), type: Type.String() })),
  storage: Quantity,
});

export const WorkspaceView = Type.Object({
  id: Type.String(),
  team: Type.String(),
  name: Type.String(),
  owner: Type.String(),
  profile: Type.String(),
  shared: Type.Boolean({ description: "the team's editors may use it too" }),
  desired: DesiredSchema,
  phase: PhaseSchema,
  reason: Type.String({ description: 'why it failed (phase failed), what it waits for (pending), or why its cluster cannot be reached (unknown)' }),
  resources: ResourcesView,
  gpuPool: Nullable(Type.String()),
  cluster: Type.String({ description: 'where it runs: `local` (this machine) or the Kubernetes cluster placement chose, for its life' }),
  environment: Literals(ENVIRONMENT_KINDS),
  tier: Literals(TIERS),
  image: Nullable(Type.String({ description: "the OCI image it runs (the host's /usr when null, on the local runtime)" })),
  volumes: Type.Array(Type.Object({ volume: Type.String({ description: '<team>/<name>' }), path: Type.String() }, strict), { description: 'the volumes it mounts' }),
  url: Type.String({ description: "path of the workspace's web app" }),
  createdAt: Time,
  updatedAt: Time,
  startedAt: Nullable(Time),
  lastActivityAt: Nullable(Time),
  identity: Type.Optional(
    Type.Object(
      {
        issuer: Type.String(),
        subject: Type.String({ description: 'the `sub` of its workload tokens, what a trust policy names: `system:atrium:<team>:<workspace>`' }),
        audiences: Type.Array(Type.String()),
        tokenFile: Type.String({ description: 'where the workspace reads its token (also in `ATRIUM_TOKEN_FILE`)' }),
        tokenExpiresAt: Nullable(Type.String({ format: 'date-time', description: 'when the token it holds now expires (it is replaced well before); null when it does not run' })),
      },
      { description: 'workload identity: the token Atrium keeps in the running workspace (one workspace, on runtimes that take tokens from Atrium)' },
    ),
  ),
});
export type WorkspaceView = Static<typeof WorkspaceView>;

export const LogoutView = Type.Object({
  endSession: Nullable(Type.String({ description: "where to send the browser so the identity provider ends its own session too (RP-initiated logout); null when there is nothing more to end" })),
});

export const Jwk = Type.Object(
  {
    kty: Type.String(),
    kid: Type.String(),
    alg: Type.String(),
    use: Type.String(),
    n: Type.String({ description: 'RSA modulus, base64url' }),
    e: Type.String({ description: 'RSA exponent, base64url' }),
  },
  { additionalProperties: true },
);

export const WorkloadIdentityView = Type.Object({
  issuer: Type.String({ description: 'the `iss` of every workload token; trusting services read `<issuer>/.well-known/openid-configuration`' }),
  audiences: Type.Array(Type.String(), { description: 'the `aud` of every workload token' }),
  tokenLifetimeSeconds: Type.Integer(),
  keyRotationSeconds: Type.Integer(),
  tokensFromAtrium: Type.Boolean({ description: 'whether this runtime takes tokens from Atrium (the local runtime); Kubernetes projects its own service-account tokens' }),
  keys: Type.Array(
    Type.Object({
      kid: Type.String(),
      algorithm: Type.String(),
      state: Type.Union([Type.Literal('next'), Type.Literal('signing'), Type.Literal('retired')], { description: '`next`: published ahead of its turn; `retired`: published until its last token expires' }),
      createdAt: Time,
      activatedAt: Nullable(Time),
      retiredAt: Nullable(Time),
      expiresAt: Nullable(Type.String({ format: 'date-time', description: 'a retired key: when the last token it signed expires, and it leaves the key set' })),
    }),
  ),
});

export const OpenIdConfiguration = Type.Object({
  issuer: Type.String(),
  jwks_uri: Type.String(),
  response_types_supported: Type.Array(Type.String()),
  subject_types_supported: Type.Array(Type.String()),
  id_token_signing_alg_values_supported: Type.Array(Type.String()),
  claims_supported: Type.Array(Type.String()),
});


export const ProfileView = Type.Object({
  name: Type.String(),
  displayName: Type.String(),
  description: Type.String(),
  environment: Literals(ENVIRONMENT_KINDS),
  resources: ResourcesView,
  tier: Literals(TIERS),
  egress: EgressSpec,
  image: Nullable(Type.String({ description: "the OCI image its workspaces run (the host's /usr when null, on the local runtime)" })),
  volumes: Type.Array(VolumeMountSpec, { description: 'volumes every workspace of it mounts' }),
  idleTimeout: Type.String(),
  agentForwarding: Type.Boolean({ description: 'SSH sessions may forward the connecting person\'s agent into the workspace' }),
  teams: Nullable(Type.Array(Type.String(), { description: 'teams allowed to use it; null means all (shown to admins)' })),
});
export type ProfileView = Static<typeof ProfileView>;

export const TokenView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  createdAt: Time,
  expiresAt: Nullable(Time),
  lastUsedAt: Nullable(Time),
});
export type TokenView = Static<typeof TokenView>;

export const SshKeyView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  fingerprint: Type.String(),
  publicKey: Type.String(),
  createdAt: Time,
});
export type SshKeyView = Static<typeof SshKeyView>;

export const SshAccessView = Type.Object({
  gateway: Nullable(
    Type.Object({
      host: Type.String({ description: 'the host name people connect to' }),
      port: Type.Integer(),
      hostKey: Type.String({ description: "the gateway's host key, `ssh-ed25519 AAAA…`" }),
      fingerprint: Type.String({ description: '`SHA256:…`, as `ssh-keygen -l` shows it' }),
    }, { description: 'the SSH gateway (null when it does not run)' }),
  ),
  keys: Type.Integer({ description: 'how many SSH keys I have registered (none: nothing lets me in)' }),
  workspaces: Type.Array(
    Type.Object({
      team: Type.String(),
      name: Type.String(),
      phase: PhaseSchema,
      alias: Type.String({ description: 'the host name `atrium config-ssh` writes: `atrium.<team>.<ws>`' }),
      gatewayUser: Type.String({ description: 'the SSH user that names it at the gateway: `<team>.<ws>`' }),
      tunnel: Type.String({ description: 'the tunnel: an HTTP upgrade (`Upgrade: ssh`) of this path with an API token' }),
      hostKey: Type.String({ description: "the workspace sshd's host key (what the tunnel reaches end to end)" }),
      fingerprint: Type.String(),
    }),
    { description: 'every workspace I may enter (the connect right)' },
  ),
});
export type SshAccessView = Static<typeof SshAccessView>;

export const UsageView = Type.Object({ quota: QuotaSpec, usage: QuotaSpec });
export type UsageView = Static<typeof UsageView>;

export const PoolView = Type.Object({
  name: Type.String(),
  gpuType: Type.String(),
  cluster: Type.String(),
  size: Type.Integer(),
  used: Type.Integer({ description: 'GPUs held by starting or running workspaces' }),
  owner: Nullable(Type.String({ description: 'owning team; null means the platform' })),
  createdAt: Time,
});
export type PoolView = Static<typeof PoolView>;

export const GrantView = Type.Object({ team: Type.String(), limit: Type.Integer() });
export type GrantView = Static<typeof GrantView>;

export const ClusterView = Type.Object({ name: Type.String(), kind: Literals(['local', 'kubernetes'] as const) });

export const ClusterParams = Type.Object({ cluster: Name }, strict);
export const ClusterObjectsQuery = Type.Object(
  {
    team: Type.Optional(Type.String({ ...Name, description: "only this team's namespace and workspaces, without the cluster-scoped objects" })),
    secrets: Type.Boolean({
      default: false,
      description: "include the data of workspace Secrets (each sshd's private host key, each app's token); without it a Secret is its metadata, annotated atrium.dev/data, and Atrium writes the data when it starts the workspace",
    }),
    format: Type.Optional(Literals(['json', 'yaml'] as const, 'yaml: one multi-document YAML stream (as Accept: application/yaml); JSON otherwise')),
  },
  strict,
);
/** A Kubernetes object as Atrium renders it: its kind and metadata, and the kind's own fields as they are. */
export const KubeObjectView = Type.Object(
  {
    apiVersion: Type.String(),
    kind: Type.String(),
    metadata: Type.Object(
      {
        name: Type.String(),
        namespace: Type.Optional(Type.String()),
        labels: Type.Optional(Type.Record(Type.String(), Type.String())),
        annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: true },
);
export const ClusterObjectList = Type.Object(
  { apiVersion: Type.Literal('v1'), kind: Type.Literal('List'), items: Type.Array(KubeObjectView) },
  { description: 'a Kubernetes List, which `kubectl apply -f` takes as it is' },
);
export type ClusterObjectList = Static<typeof ClusterObjectList>;

export const AuditView = Type.Object({
  id: Type.Integer(),
  at: Time,
  actor: Type.String(),
  action: Type.String(),
  target: Type.String(),
  result: Type.String({ description: 'ok, or the error code of a refusal' }),
  status: Type.Integer(),
  ip: Type.String(),
  details: Type.Record(Type.String(), Type.Unknown()),
});
export type AuditView = Static<typeof AuditView>;

// Request bodies

const Password = Type.String({ minLength: 8, maxLength: 256, description: '8–256 characters' });
const TokenName = Type.String({ minLength: 1, maxLength: 64, pattern: '^[\\x20-\\x7e]+$', description: '1–64 printable ASCII characters' });

export const LoginBody = Type.Object(
  {
    username: Name,
    password: Type.String({ minLength: 1, maxLength: 256 }),
    token: Type.Optional(
      Type.Object({ name: TokenName, expiresIn: Type.Optional(Duration) }, { ...strict, description: 'issue an API token instead of a cookie (CLI)' }),
    ),
  },
  strict,
);
export const LoginResult = Type.Object({ user: UserView, token: Type.Optional(Type.String({ description: 'shown once' })) });

export const PasswordBody = Type.Object({ current: Type.String({ minLength: 1, maxLength: 256 }), password: Password }, strict);
export const TokenBody = Type.Object({ name: TokenName, expiresIn: Type.Optional(Duration) }, strict);
export const TokenCreated = Type.Object({ token: Type.String({ description: 'the secret, shown only now' }), info: TokenView });
export const SshKeyBody = Type.Object(
  { name: Type.Optional(TokenName), publicKey: Type.String({ minLength: 16, maxLength: 16384, description: 'one OpenSSH public key line' }) },
  strict,
);
export const IdParams = Type.Object({ id: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) }, strict);

export const NewUserBody = Type.Object(
  {
    username: Name,
    password: Type.Optional(Password),
    email: Type.Optional(Type.String({ maxLength: 254, pattern: '^[^\\s@]+@[^\\s@]+$' })),
    displayName: Type.Optional(Type.String({ maxLength: 128 })),
    admin: Type.Optional(Type.Boolean()),
  },
  strict,
);
export const UserCreated = Type.Object({ user: UserView, password: Nullable(Type.String({ description: 'generated password, shown once' })) });
export const UserPatch = Type.Object(
  {
    admin: Type.Optional(Type.Boolean()),
    disabled: Type.Optional(Type.Boolean({ description: 'disabling ends sessions, revokes tokens and stops workspaces' })),
    password: Type.Optional(Password),
    email: Type.Optional(Nullable(Type.String({ maxLength: 254, pattern: '^[^\\s@]+@[^\\s@]+$' }))),
    displayName: Type.Optional(Type.String({ maxLength: 128 })),
  },
  { ...strict, minProperties: 1 },
);

export const QuotaPatch = Type.Partial(QuotaSpec, { ...strict, minProperties: 1 });
export const NewTeamBody = Type.Object(
  {
    name: Name,
    displayName: Type.Optional(Type.String({ maxLength: 128 })),
    sensitive: Type.Optional(Type.Boolean()),
    quota: Type.Optional(QuotaPatch),
    owner: Type.Optional(Name),
  },
  strict,
);
export const TeamPatch = Type.Object(
  { displayName: Type.Optional(Type.String({ maxLength: 128 })), sensitive: Type.Optional(Type.Boolean()) },
  { ...strict, minProperties: 1 },
);
export const MemberParams = Type.Object({ team: Name, user: Name }, strict);
export const MemberBody = Type.Object({ role: RoleSchema }, strict);

export const NewWorkspaceBody = Type.Object(
  {
    name: Name,
    profile: Name,
    shared: Type.Optional(Type.Boolean({ default: false })),
    start: Type.Optional(Type.Boolean({ default: true, description: 'start at once (default) or only create' })),
    volumes: Type.Optional(Type.Array(VolumeMountSpec, { maxItems: 16, description: "volumes to mount besides the profile's: the team's own by name, datasets published to the team as <team>/<name>" })),
  },
  strict,
);
export const WorkspacePatch = Type.Object({ shared: Type.Boolean() }, strict);
export const DeleteWorkspaceQuery = Type.Object({ purge: Type.Boolean({ default: false, description: 'also delete the home' }) }, strict);
export const WorkspaceListQuery = Type.Object(
  {
    ...Pagination.properties,
    owner: Type.Optional(Type.String({ pattern: '^(me|(?!.*--)[a-z][a-z0-9-]{0,30}[a-z0-9])$', description: 'a username, or me' })),
    all: Type.Boolean({ default: false, description: 'every team (admins only)' }),
    holdsGpu: Type.Boolean({ default: false, description: 'only workspaces holding GPUs now (starting, running, stopping, or asked to run)' }),
  },
  strict,
);
export const TeamListQuery = Type.Object({ ...Pagination.properties, all: Type.Boolean({ default: false }) }, strict);

export const NewPoolBody = Type.Object(
  {
    name: Name,
    gpuType: GpuType,
    size: Type.Integer({ minimum: 0, maximum: 100000 }),
    cluster: Type.Optional(Name),
    owner: Type.Optional(Nullable(Name)),
  },
  strict,
);
export const PoolPatch = Type.Object(
  { size: Type.Optional(Type.Integer({ minimum: 0, maximum: 100000 })), owner: Type.Optional(Nullable(Name)) },
  { ...strict, minProperties: 1 },
);
export const GrantParams = Type.Object({ pool: Name, team: Name }, strict);
export const GrantBody = Type.Object({ limit: Type.Integer({ minimum: 0, maximum: 100000 }) }, strict);

export const AuditQuery = Type.Object(
  {
    ...Pagination.properties,
    actor: Type.Optional(Type.String({ maxLength: 64 })),
    action: Type.Optional(Type.String({ maxLength: 64, pattern: '^[a-z.-]+$' })),
    target: Type.Optional(Type.String({ maxLength: 256 })),
    result: Type.Optional(Type.String({ maxLength: 64 })),
    since: Type.Optional(Time),
    until: Type.Optional(Time),
  },
  strict,
);

export const EventsQuery = Type.Object(
  { after: Type.Optional(Type.Integer({ minimum: 0, description: 'resume after this event id (or send Last-Event-ID)' })) },
  strict,
);
export const LogsQuery = Type.Object(
  {
    tail: Type.Integer({ minimum: 1, maximum: 10000, default: 200, description: 'how many of the last lines' }),
    follow: Type.Boolean({ default: false, description: 'keep streaming new output' }),
  },
  strict,
);

export const EventView = Type.Object({
  id: Type.Integer(),
  team: Type.String(),
  workspace: Nullable(Type.String()),
  type: Type.String(),
  message: Type.String(),
  data: Type.Record(Type.String(), Type.Unknown()),
  at: Time,
});
export type EventView = Static<typeof EventView>;

export const Health = Type.Object({ status: Type.Literal('ok'), database: Type.String() });

/** An image name: what profiles name in `image` */
export const ImageName = Type.String({ pattern: '^[a-z0-9][a-z0-9._/:@-]{0,127}$', description: 'lowercase letters, digits and . _ / : @ -, at most 128 characters' });

export const ImageView = Type.Object(
  {
    name: Type.String(),
    source: Type.String({ description: 'what it was copied from, as a skopeo reference' }),
    digest: Type.String({ description: "the manifest's digest" }),
    sizeBytes: Type.Integer(),
    size: Type.String({ description: 'sizeBytes for people' }),
    importedAt: Type.String({ format: 'date-time' }),
    unpacked: Type.Boolean({ description: 'a root is unpacked and ready for starts' }),
    usedBy: Type.Array(Type.String(), { description: 'team/workspace names whose sandbox (running or stopped) was made from it' }),
  },
  strict,
);

export const ImportImageBody = Type.Object(
  {
    source: Type.String({
      minLength: 1,
      maxLength: 1024,
      description: 'a skopeo reference (docker://…, oci:PATH[:TAG], oci-archive:FILE, docker-archive:FILE, dir:PATH), a path on the server (an OCI layout or an archive), or a registry reference such as python:3.11',
    }),
    name: Type.Optional(ImageName),
  },
  strict,
);

export const ImageImporting = Type.Object(
  { name: Type.String(), state: Type.Literal('importing'), message: Type.String() },
  strict,
);

export const ImageParams = Type.Object({ image: Type.String({ minLength: 1, maxLength: 128, description: 'the image name, URL-encoded' }) }, strict);

export const VolumeView = Type.Object(
  {
    team: Type.String({ description: 'the team that owns it' }),
    name: Type.String(),
    size: Type.String(),
    sizeBytes: Type.Integer(),
    readOnlyFor: Literals(READ_ONLY_FOR),
    sharedWith: Type.Array(Type.String(), { description: 'teams it is published to, read-only (a dataset when any)' }),
    mountedBy: Type.Array(Type.String(), { description: 'workspaces (team/name) that mount it' }),
    createdAt: Time,
  },
  strict,
);
export const VolumeParams = Type.Object({ team: Name, volume: Name }, strict);
export const NewVolumeBody = Type.Object(
  {
    name: Name,
    size: Quantity,
    readOnlyFor: Type.Optional(Type.Union(READ_ONLY_FOR.map((r) => Type.Literal(r)), { default: 'none', description: "viewers: read-only in workspaces whose owner is a viewer of the team" })),
  },
  strict,
);
export const VolumePatch = Type.Object(
  {
    size: Type.Optional(Quantity),
    readOnlyFor: Type.Optional(Type.Union(READ_ONLY_FOR.map((r) => Type.Literal(r)))),
    sharedWith: Type.Optional(Type.Array(Name, { maxItems: 1000, description: 'publish it read-only to these teams, as a dataset (admins; [] unpublishes)' })),
  },
  strict,
);

export const CliLoginBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[\\x20-\\x7e]+$', description: 'the name of the API token the CLI gets' }),
    expiresIn: Type.Optional(Duration),
    provider: Type.Optional(Name),
  },
  strict,
);
export const CliLoginStarted = Type.Object(
  {
    code: Type.String({ description: 'what the person checks in the browser' }),
    verifyUrl: Type.String({ description: 'where the person approves it (through the provider, when one was named)' }),
    pollSecret: Type.String({ description: 'only the CLI holds it: POST it to /api/v1/auth/cli-logins/poll' }),
    expiresInSeconds: Type.Integer(),
    intervalSeconds: Type.Integer(),
  },
  strict,
);
export const CliLoginPoll = Type.Object(
  {
    state: Type.Union([Type.Literal('pending'), Type.Literal('expired'), Type.Literal('approved')]),
    token: Type.Optional(Type.String()),
    user: Type.Optional(UserView),
  },
  strict,
);

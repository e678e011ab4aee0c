import { Type, type Static } from '@sinclair/typebox';
import { Duration, FiniteDuration, GpuType, Name, ProfileSpec, Quantity, QuotaSpec } from '../domain/index.js';

const LabelKey = '^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$';
const LabelValue = '^(([A-Za-z0-9][A-Za-z0-9._-]{0,61})?[A-Za-z0-9])?$';
const Toleration = Type.Object(
  {
    key: Type.Optional(Type.String({ pattern: LabelKey })),
    operator: Type.Optional(Type.Union([Type.Literal('Exists'), Type.Literal('Equal')])),
    value: Type.Optional(Type.String({ pattern: LabelValue })),
    effect: Type.Optional(Type.Union([Type.Literal('NoSchedule'), Type.Literal('PreferNoSchedule'), Type.Literal('NoExecute')])),
  },
  { additionalProperties: false },
);
const HostPattern = '^[A-Za-z0-9.:\\[\\]-]{1,253}$';
const AddressOrCidr = Type.String({
  pattern: '^[0-9A-Fa-f.:]{2,45}(/[0-9]{1,3})?$',
  description: 'an IP address or CIDR range, e.g. 127.0.0.1 or 10.0.0.0/8',
});

/** The whole configuration. Every key can come from the YAML file, `ATRIUM_*` env or flags. */
/** Who may sign in through an identity provider: any one match lets them in. */
const AllowList = Type.Object(
  {
    /** email domains (of a verified email), e.g. example.com */
    emailDomains: Type.Array(Type.String({ pattern: '^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$' }), { default: [], maxItems: 1000 }),
    /** groups, from the provider's groups claim */
    groups: Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { default: [], maxItems: 1000 }),
    /** subjects (the provider's `sub`, or the header's value) */
    subjects: Type.Array(Type.String({ minLength: 1, maxLength: 320 }), { default: [], maxItems: 10000 }),
  },
  { additionalProperties: false },
);

export const ConfigSchema = Type.Object(
  {
    listen: Type.Object(
      {
        host: Type.String({ pattern: HostPattern, default: '127.0.0.1' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** The URL people use to reach Atrium, when it is behind a proxy or a DNS name. */
    publicUrl: Type.Optional(Type.String({ pattern: '^https?://[^\\s/]+(/[^\\s]*)?$' })),
    tls: Type.Optional(
      Type.Object({ cert: Type.String({ minLength: 1 }), key: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
    ),
    dataDir: Type.Optional(Type.String({ minLength: 1 })),
    /** `sqlite` (a file under dataDir), `sqlite:/path/to/file.db`, or `postgres://user:pass@host/db` */
    database: Type.String({ pattern: '^(sqlite(:.+)?|postgres(ql)?://.+)$', default: 'sqlite' }),
    /** PostgreSQL connections; twice this machine's CPUs (4 to 20) when unset */
    databasePoolSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
    /**
     * Workload identity: Atrium is an OpenID issuer for workspaces. Each
     * running workspace holds a short-lived token for these audiences at
     * /var/run/secrets/atrium/token (path in ATRIUM_TOKEN_FILE), which
     * services trusting the issuer (AWS STS, MinIO, Vault) exchange for their
     * credentials; on Kubernetes the cluster projects its own service-account
     * tokens with the same audiences there instead.
     */
    workloadIdentity: Type.Object(
      {
        enabled: Type.Boolean({ default: true }),
        /** who the tokens are for (`aud`): the client id each trusting service checks, e.g. sts.amazonaws.com */
        audiences: Type.Array(Type.String({ minLength: 1, maxLength: 253, pattern: '^[\\x21-\\x7e]+$' }), { maxItems: 8, default: ['atrium'] }),
        /** how long a token is valid; it is replaced when 80% of that has passed */
        tokenLifetime: Type.String({ ...FiniteDuration, default: '1h' }),
        /** how often the signing key changes; the old key stays published until the last token it signed expires */
        keyRotation: Type.String({ ...FiniteDuration, default: '30d' }),
        /** the 32-byte key that encrypts the signing keys in the database (made at first start): every control plane on one database needs the same file */
        keyFile: Type.Optional(Type.String({ minLength: 1 })),
      },
      { additionalProperties: false, default: {} },
    ),
    auth: Type.Object(
      {
        /** trusted request header carrying the signed-in user, e.g. kubeflow-userid */
        header: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9-]{1,64}$' })),
        /** prefix to strip from the header value, e.g. accounts.google.com: */
        headerPrefix: Type.String({ maxLength: 128, default: '' }),
        /** addresses the trusted header is accepted from */
        trustedProxies: Type.Array(AddressOrCidr, { default: [], maxItems: 256 }),
        sessionTtl: Type.String({ ...FiniteDuration, default: '12h' }),
        loginAttempts: Type.Integer({ minimum: 1, maximum: 10000, default: 10 }),
        loginWindow: Type.String({ ...FiniteDuration, default: '15m' }),
        /** after loginAttempts failures for one account from anywhere, each failure closes it twice as long, up to this */
        loginBackoffMax: Type.String({ ...FiniteDuration, default: '5m' }),
        /** who the trusted header may sign in (everyone it names when unset) */
        headerAllow: Type.Optional(AllowList),
        /** OpenID Connect providers, each a button on the sign-in page */
        oidc: Type.Array(
          Type.Object(
            {
              /** in URLs (/api/v1/auth/oidc/<name>/…) and in `atrium login --sso <name>` */
              name: Name,
              displayName: Type.String({ minLength: 1, maxLength: 80 }),
              /** the issuer URL; its /.well-known/openid-configuration is read at start (https, or http on loopback) */
              issuer: Type.String({ pattern: '^https?://[^\\s]+$', maxLength: 2048 }),
              clientId: Type.String({ minLength: 1, maxLength: 512 }),
              /** the client secret, or a file holding it (clientSecretFile); neither for a public client */
              clientSecret: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
              clientSecretFile: Type.Optional(Type.String({ minLength: 1 })),
              scopes: Type.Array(Type.String({ pattern: '^[\\x21\\x23-\\x5b\\x5d-\\x7e]{1,128}$' }), { default: ['openid', 'email', 'profile'], maxItems: 32 }),
              /** the ID token (or userinfo) claim listing the person's groups */
              groupsClaim: Type.String({ minLength: 1, maxLength: 128, default: 'groups' }),
              /** who may sign in with this provider (everyone it signs in when unset) */
              allow: Type.Optional(AllowList),
              /** group → team membership, applied at each sign-in: added while the person is in the group, removed when not */
              groups: Type.Record(
                Type.String({ minLength: 1, maxLength: 256 }),
                Type.Object({ team: Name, role: Type.Union([Type.Literal('viewer'), Type.Literal('editor'), Type.Literal('owner')]) }, { additionalProperties: false }),
                { default: {}, maxProperties: 1000 },
              ),
            },
            { additionalProperties: false },
          ),
          { default: [], maxItems: 16 },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    admin: Type.Object(
      {
        username: Type.String({ ...Name, default: 'admin' }),
        /** initial password of the first admin; generated and printed once when unset */
        password: Type.Optional(Type.String({ minLength: 8, maxLength: 256 })),
      },
      { additionalProperties: false, default: {} },
    ),
    limits: Type.Object(
      { bodyBytes: Type.Integer({ minimum: 1024, maximum: 16 * 1024 * 1024, default: 65536 }) },
      { additionalProperties: false, default: {} },
    ),
    defaults: Type.Object(
      {
        quota: Type.Object(QuotaSpec.properties, {
          additionalProperties: false,
          default: { cpu: '4', memory: '16Gi', storage: '50Gi', workspaces: 5, gpu: {} },
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    runtime: Type.Object(
      {
        /** local: runc sandboxes on this machine (needs root); kubernetes: the clusters under `kubernetes.clusters`; none: workspaces are admitted but stay pending */
        kind: Type.Union([Type.Literal('local'), Type.Literal('kubernetes'), Type.Literal('none')], { default: 'local' }),
        /** CPU and memory kept for the system and Atrium itself; the rest is allocatable to guarantees */
        reserve: Type.Object({ cpu: Quantity, memory: Quantity }, { additionalProperties: false, default: { cpu: '500m', memory: '1Gi' } }),
        /** first host uid given to a user; give each Atrium on one machine its own range */
        uidBase: Type.Integer({ minimum: 10000, maximum: 2_000_000_000, default: 2_000_000 }),
        /** processes per workspace */
        pids: Type.Integer({ minimum: 64, maximum: 1_000_000, default: 1024 }),
        stopGrace: Type.String({ ...FiniteDuration, default: '10s' }),
        readinessTimeout: Type.String({ ...FiniteDuration, default: '90s' }),
        /** how often running workspaces are checked for activity */
        cullEvery: Type.String({ ...FiniteDuration, default: '60s' }),
        /** how long before stopping an idle workspace its people are warned */
        idleWarning: Type.String({ ...Duration, default: '5m' }),
        /** CPU use (in CPUs, e.g. 0.05) above which a workspace is active, so unattended runs are never culled */
        cpuActive: Type.Number({ minimum: 0, maximum: 1024, default: 0.05 }),
        /** the compiled in-sandbox agent; defaults to dist/agent/atrium-agent */
        agent: Type.Optional(Type.String({ minLength: 1 })),
        /** GPUs to use instead of discovering them (index, type, uuid, device path) */
        gpus: Type.Array(
          Type.Object(
            { index: Type.Integer({ minimum: 0, maximum: 1023 }), type: GpuType, uuid: Type.String({ minLength: 1, maxLength: 128 }), path: Type.String({ pattern: '^/', description: 'the device node, e.g. /dev/nvidia0' }) },
            { additionalProperties: false },
          ),
          { default: [], maxItems: 1024 },
        ),
        /** how long an unpacked image root no workspace uses is kept (the image itself stays until `atrium images rm`) */
        imageGrace: Type.String({ ...FiniteDuration, default: '1h' }),
        /** public egress for profiles with `egress: public`: a network namespace and veth per workspace, NAT and nftables filters on the host */
        egress: Type.Object(
          {
            /** addresses for workspace links (IPv4, /8 to /24); the first is the platform's DNS relay. Give each Atrium on one machine its own */
            subnet: Type.String({ pattern: '^\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}$', default: '10.88.0.0/16' }),
            /** the interface egress leaves by; the host's default route's when unset */
            uplink: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,15}$' })),
            /** the next hop on the uplink; the default route's when unset */
            gateway: Type.Optional(Type.String({ pattern: '^\\d{1,3}(\\.\\d{1,3}){3}$' })),
            /** resolvers the DNS relay asks; the host's /etc/resolv.conf's when unset */
            dns: Type.Optional(Type.Array(Type.String({ pattern: '^[0-9A-Fa-f.:]{2,45}$' }), { minItems: 1, maxItems: 8 })),
          },
          { additionalProperties: false, default: {} },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    proxy: Type.Object(
      {
        /**
         * origin: every workspace on its own origin, <ws>--<team>.<appsDomain> (default);
         * single-origin: workspaces under /w/ on the portal's origin, where code in one
         * workspace can act with the credentials of whoever opens it (warned at start)
         */
        isolation: Type.Union([Type.Literal('origin'), Type.Literal('single-origin')], { default: 'origin' }),
        /** parent domain of the workspace origins; `localhost` needs no DNS, a real domain needs a wildcard record (and certificate) */
        appsDomain: Type.String({ pattern: '^(?=.{1,200}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$', default: 'localhost' }),
        /** how often proxy activity is written to the workspaces' last-activity time */
        activityFlush: Type.String({ ...FiniteDuration, default: '30s' }),
        /** how long a workspace may take to send response headers */
        responseTimeout: Type.String({ ...FiniteDuration, default: '5m' }),
        /** WebSockets open at once per person, across every workspace */
        maxTunnelsPerUser: Type.Integer({ minimum: 1, maximum: 100_000, default: 100 }),
        /** WebSockets open at once to one workspace, from everyone */
        maxTunnelsPerWorkspace: Type.Integer({ minimum: 1, maximum: 100_000, default: 200 }),
        /** a WebSocket whose receiver (browser or app) takes none of the bytes waiting for it this long is closed */
        tunnelStallTimeout: Type.String({ ...Duration, default: '60s' }),
        /** a WebSocket that carries nothing either way this long is closed (Jupyter pings its kernels' sockets every 30 s) */
        tunnelIdleTimeout: Type.String({ ...Duration, default: '1h' }),
      },
      { additionalProperties: false, default: {} },
    ),
    ssh: Type.Object(
      {
        /** run the SSH gateway: `ssh -p <port> <team>.<ws>@<host>` */
        enabled: Type.Boolean({ default: true }),
        /** where the gateway listens; the HTTP listen host when unset */
        host: Type.Optional(Type.String({ pattern: HostPattern })),
        /** 0 picks a free port */
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 2222 }),
        /** the host name people connect to, shown in the portal and written by `atrium config-ssh --gateway`; publicUrl's host (or the listen host) when unset */
        publicHost: Type.Optional(Type.String({ pattern: HostPattern })),
        /** how long a connection may take from its first byte to a signed-in person */
        handshakeTimeout: Type.String({ ...FiniteDuration, default: '30s' }),
        /** a connection that carries nothing either way this long is closed */
        idleTimeout: Type.String({ ...Duration, default: '1h' }),
        /** SSH connections (gateway and tunnel) open at once per person */
        maxSessionsPerUser: Type.Integer({ minimum: 1, maximum: 100_000, default: 100 }),
      },
      { additionalProperties: false, default: {} },
    ),
    kubernetes: Type.Object(
      {
        /** team namespaces are `<prefix><team>` on every cluster */
        namespacePrefix: Type.String({ pattern: '^[a-z]([a-z0-9-]{0,28}[a-z0-9-])?$', default: 'atrium-' }),
        /**
         * the identity Atrium writes with, which the admission policy lets through;
         * found from each cluster (SelfSubjectReview) when unset, and `system:serviceaccount:atrium:atrium` in `atrium render`
         */
        writer: Type.Optional(Type.String({ minLength: 1, maxLength: 253 })),
        /** where Atrium's pods run when it runs in the cluster: the only source admitted to workspace ports */
        atriumNamespace: Type.String({ ...Name, default: 'atrium' }),
        atriumPodLabels: Type.Record(Type.String({ pattern: LabelKey }), Type.String({ pattern: LabelValue }), { default: { 'app.kubernetes.io/name': 'atrium' }, maxProperties: 16 }),
        /** address ranges Atrium connects to pods from when it runs outside the cluster with `endpoint: direct` */
        ingressCidrs: Type.Array(AddressOrCidr, { default: [], maxItems: 64 }),
        /** the workspace image for profiles that name none (deploy/images/workspace, built and pushed by you) */
        defaultImage: Type.String({ minLength: 1, maxLength: 512, default: 'atrium/workspace:latest' }),
        /** the home volumes' storage class; the cluster's default class when unset */
        storageClass: Type.Optional(Type.String({ pattern: LabelValue, minLength: 1 })),
        /** team volumes' storage class, one offering ReadWriteMany (NFS, CephFS, a CSI file driver); storageClass when unset */
        volumeStorageClass: Type.Optional(Type.String({ pattern: LabelValue, minLength: 1 })),
        sandboxed: Type.Object(
          {
            runtimeClass: Type.String({ ...Name, default: 'atrium-sandboxed' }),
            /** the CRI handler the nodes run sandboxed pods with (Kata Containers: kata, kata-qemu, kata-clh) */
            handler: Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$', default: 'kata' }),
            /** what the guest kernel costs per pod, counted by the scheduler and quota */
            overhead: Type.Object({ cpu: Quantity, memory: Quantity }, { additionalProperties: false, default: { cpu: '250m', memory: '160Mi' } }),
          },
          { additionalProperties: false, default: {} },
        ),
        /**
         * how long a cluster may take to make a workspace's pod and start its container (image pull included); waiting
         * for a node with room has no deadline, and once the container runs the app has `runtime.readinessTimeout` to answer
         */
        startTimeout: Type.String({ ...FiniteDuration, default: '15m' }),
        /** with an Istio mesh, an AuthorizationPolicy per team admitting only this principal (e.g. cluster.local/ns/atrium/sa/atrium) */
        meshPrincipal: Type.Optional(Type.String({ minLength: 1, maxLength: 253 })),
        /** grant every member a read-only Role (no Secrets, no exec) in their team's namespace, bound to the user `<prefix><username>` */
        memberReadOnly: Type.Optional(Type.Object({ userPrefix: Type.String({ maxLength: 64, default: '' }) }, { additionalProperties: false })),
        clusters: Type.Array(
          Type.Object(
            {
              name: Name,
              /** a kubeconfig file; the in-cluster service account when unset */
              kubeconfig: Type.Optional(Type.String({ minLength: 1 })),
              /** the kubeconfig's context; its current context when unset */
              context: Type.Optional(Type.String({ minLength: 1, maxLength: 253 })),
              /**
               * how the proxy and the SSH gateway reach pods: `direct` (the pod IP; Atrium runs in the cluster or routes to it)
               * or `apiserver` (the API server's port-forward, from anywhere the API server is reachable)
               */
              endpoint: Type.Union([Type.Literal('direct'), Type.Literal('apiserver')], { default: 'apiserver' }),
              /** GPU node groups: the node labels that select a type and the taints its nodes carry */
              gpuPools: Type.Array(
                Type.Object(
                  { type: GpuType, nodeSelector: Type.Record(Type.String({ pattern: LabelKey }), Type.String({ pattern: LabelValue }), { maxProperties: 16 }), tolerations: Type.Array(Toleration, { default: [], maxItems: 16 }) },
                  { additionalProperties: false },
                ),
                { default: [], maxItems: 64 },
              ),
              /** scheduling constraints for every workspace pod on this cluster */
              nodeSelector: Type.Record(Type.String({ pattern: LabelKey }), Type.String({ pattern: LabelValue }), { default: {}, maxProperties: 16 }),
              tolerations: Type.Array(Toleration, { default: [], maxItems: 16 }),
              storageClass: Type.Optional(Type.String({ pattern: LabelValue, minLength: 1 })),
              volumeStorageClass: Type.Optional(Type.String({ pattern: LabelValue, minLength: 1 })),
            },
            { additionalProperties: false },
          ),
          { default: [], maxItems: 64 },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    metrics: Type.Object(
      {
        /** serve /metrics to anyone who reaches it, without a token */
        open: Type.Boolean({ default: false }),
        /** a bearer token for scrapers (Prometheus `authorization.credentials`); admins' API tokens work too */
        token: Type.Optional(Type.String({ minLength: 16, maxLength: 1024, pattern: '^[\\x21-\\x7e]+$' })),
        /** a file holding that token (Prometheus `credentials_file` on the other side) */
        tokenFile: Type.Optional(Type.String({ minLength: 1 })),
      },
      { additionalProperties: false, default: {} },
    ),
    logLevel: Type.Union(['fatal', 'error', 'warn', 'info', 'debug'].map((l) => Type.Literal(l)), { default: 'info' }),
    /** server log lines: text for people on a terminal, JSON (one object per line) for collectors; auto picks text when standard output is a terminal */
    logFormat: Type.Union([Type.Literal('auto'), Type.Literal('text'), Type.Literal('json')], { default: 'auto', description: 'auto (text on a terminal, JSON otherwise), text or json' }),
    profiles: Type.Array(ProfileSpec, { maxItems: 1000 }),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;

/** Profiles shipped with Atrium, modelled on the usual JupyterHub set-up. */
export const DEFAULT_PROFILES: ProfileSpec[] = [
  {
    name: 'standard-cpu',
    displayName: 'Standard CPU',
    description: '1 CPU guaranteed, up to 2; 2Gi memory guaranteed, up to 4Gi; 10Gi home',
    environment: 'jupyter',
    cpu: { guarantee: '1', limit: '2' },
    memory: { guarantee: '2Gi', limit: '4Gi' },
    storage: '10Gi',
    tier: 'standard',
    egress: 'none',
    idleTimeout: '1h',
  },
  {
    name: 'gpu-training',
    displayName: 'GPU training',
    description: '4 CPU, 16Gi memory and one NVIDIA T4; 50Gi home',
    environment: 'jupyter',
    cpu: { guarantee: '4', limit: '4' },
    memory: { guarantee: '16Gi', limit: '16Gi' },
    gpu: { count: 1, type: 't4' },
    storage: '50Gi',
    tier: 'standard',
    egress: 'none',
    idleTimeout: '4h',
  },
  {
    name: 'small',
    displayName: 'Small shell',
    description: 'A quarter CPU and 256Mi for quick tasks and tests; SSH only',
    environment: 'shell',
    cpu: { guarantee: '100m', limit: '250m' },
    memory: { guarantee: '128Mi', limit: '256Mi' },
    storage: '1Gi',
    tier: 'standard',
    egress: 'none',
    idleTimeout: '30m',
  },
];

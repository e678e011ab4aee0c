/**
 * Every error code Atrium answers with, its HTTP status and what it means.
 * Codes are part of the API contract (design §4): the API, the browser
 * proxy and the CLI all take them from here, the README's API section and
 * the OpenAPI document list them, and a code not in this table does not
 * compile.
 */
export const ERROR_CODES = {
  invalid_input: { status: 400, meaning: 'a field, query parameter or body is not valid; the message names it' },
  bad_path: { status: 400, meaning: 'a workspace URL with a path the proxy refuses (encoded slashes, dot segments)' },
  duplicate_cookie: { status: 400, meaning: 'two cookies of the same Atrium name arrived (one was set by another site); the answer expires them' },
  unauthenticated: { status: 401, meaning: 'not signed in, or the credentials are not valid (any more)' },
  forbidden: { status: 403, meaning: 'signed in, but not allowed to do this' },
  csrf: { status: 403, meaning: 'a cookie-authenticated change or WebSocket from another origin, or without an Origin header' },
  sign_in_refused: { status: 403, meaning: "the identity provider signed the person in, but Atrium's allow-list for it does not let them in" },
  account_disabled: { status: 403, meaning: 'the account is disabled' },
  wrong_password: { status: 403, meaning: 'the current password given with a password change is wrong' },
  quota_exceeded: { status: 403, meaning: "admission: the team's quota has no room" },
  grant_exceeded: { status: 403, meaning: "admission: the team's GPU grant or the pool has no room" },
  no_gpu_pool: { status: 403, meaning: 'admission: the team holds no grant on a GPU pool of the type the profile needs' },
  profile_not_allowed: { status: 403, meaning: 'admission: the profile is not available to the team' },
  volume_not_allowed: { status: 403, meaning: "admission: the volume is neither the team's own nor a dataset published to it" },
  isolation_required: { status: 403, meaning: 'admission: a sensitive team may only use sandboxed profiles' },
  capacity_exceeded: { status: 403, meaning: 'placement: the machine has no room for the guaranteed CPU or memory' },
  no_gpu: { status: 403, meaning: 'placement: the machine has too few GPUs of the type' },
  tier_unavailable: { status: 403, meaning: "placement: the runtime does not offer the profile's isolation tier" },
  egress_unavailable: { status: 403, meaning: "placement: the runtime does not offer the profile's egress" },
  not_found: { status: 404, meaning: 'does not exist, or is not visible to you (the same answer for both)' },
  conflict: { status: 409, meaning: 'conflicts with the current state' },
  name_taken: { status: 409, meaning: 'a user, team, workspace or pool of that name exists' },
  key_taken: { status: 409, meaning: 'that SSH key is already registered' },
  team_not_empty: { status: 409, meaning: 'the team still has workspaces' },
  last_owner: { status: 409, meaning: 'a team needs at least one owner' },
  self_lockout: { status: 409, meaning: 'an admin may not disable themself or drop their own admin role' },
  image_in_use: { status: 409, meaning: 'the image is used by workspaces (running or stopped), or is being imported' },
  volume_in_use: { status: 409, meaning: 'the volume is mounted by workspaces' },
  pool_in_use: { status: 409, meaning: 'the GPU pool has GPUs in use by workspaces' },
  invalid_transition: { status: 409, meaning: 'the workspace cannot go from its phase to the one reported' },
  no_runtime: { status: 409, meaning: 'no runtime is configured (atrium serve --runtime none)' },
  upgrade_required: { status: 426, meaning: 'the SSH tunnel is an HTTP upgrade (`Connection: Upgrade`, `Upgrade: ssh`); `atrium ssh --stdio` makes one' },
  payload_too_large: { status: 413, meaning: 'the request body is over the limit' },
  unsupported_media_type: { status: 415, meaning: 'the body is not application/json' },
  misdirected_request: { status: 421, meaning: 'the Host header names a server this is not' },
  rate_limited: { status: 429, meaning: 'too many failed sign-ins; Retry-After says when to try again' },
  too_many_requests: { status: 429, meaning: 'too many workspace sign-ins in progress at once' },
  too_many_connections: { status: 429, meaning: 'the person or the workspace has the most WebSockets, or the person the most SSH sessions, open that are allowed' },
  internal: { status: 500, meaning: 'an unexpected failure; the server log has the details' },
  bad_gateway: { status: 502, meaning: 'the workspace did not answer' },
  not_running: { status: 503, meaning: 'the workspace is not running; details.phase says what it is doing' },
  timeout: { status: 504, meaning: 'the workspace did not answer in time' },
} as const satisfies Record<string, { status: number; meaning: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The codes of one HTTP status, so each error class only takes codes that fit it. */
type CodeOf<S extends number> = { [C in ErrorCode]: (typeof ERROR_CODES)[C]['status'] extends S ? C : never }[ErrorCode];

/**
 * Typed domain errors. Every service throws these; one writer (the API's
 * error handler, the proxy's) turns them into the status of their code and
 * the uniform body `{"error": {"code", "message", "details"}}`, and the CLI
 * and portal show `message`.
 */
export class DomainError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    /** response headers that belong with this error (Retry-After, expiring Set-Cookie) */
    readonly headers: Readonly<Record<string, string | string[]>> = {},
  ) {
    super(message);
    this.name = new.target.name;
    this.status = ERROR_CODES[code].status;
  }
}

export class InvalidInput extends DomainError {
  constructor(message: string, details?: Record<string, unknown>, code: CodeOf<400> = 'invalid_input') {
    super(code, message, details);
  }
}

export class Unauthenticated extends DomainError {
  constructor(message = 'authentication required') {
    super('unauthenticated', message);
  }
}

export class Forbidden extends DomainError {
  constructor(message = 'not allowed', code: CodeOf<403> = 'forbidden', details?: Record<string, unknown>) {
    super(code, message, details);
  }
}

/** Also used for "exists but is not yours", so the two read the same. */
export class NotFound extends DomainError {
  constructor(what: string) {
    super('not_found', `${what} not found`);
  }
}

export class Conflict extends DomainError {
  constructor(message: string, code: CodeOf<409> = 'conflict', details?: Record<string, unknown>) {
    super(code, message, details);
  }
}

/** An admission refusal: quota, grant, isolation or placement. */
export class AdmissionRefused extends DomainError {
  constructor(code: CodeOf<403>, message: string, details?: Record<string, unknown>) {
    super(code, message, details);
  }
}

/** Too many failed sign-ins: the account or address is closed for `retryAfterSeconds` (Retry-After). */
export class RateLimited extends DomainError {
  constructor(readonly retryAfterSeconds: number) {
    super('rate_limited', `too many failed attempts; try again in ${retryAfterSeconds}s`, { retryAfterSeconds }, { 'retry-after': String(retryAfterSeconds) });
  }
}

/** Too many of something open or in progress at once. */
export class TooMany extends DomainError {
  constructor(code: 'too_many_requests' | 'too_many_connections', message: string, details?: Record<string, unknown>) {
    super(code, message, details);
  }
}

/** The workspace is not running, or cannot be reached (the proxy's answers). */
export class Unavailable extends DomainError {
  constructor(code: 'not_running' | 'bad_gateway' | 'timeout', message: string, details?: Record<string, unknown>, retryAfterSeconds?: number) {
    super(code, message, details, retryAfterSeconds !== undefined ? { 'retry-after': String(retryAfterSeconds) } : {});
  }
}

/** A request for a host this server does not answer for. */
export class Misdirected extends DomainError {
  constructor(message: string) {
    super('misdirected_request', message);
  }
}

/** Whether a value is an error code of the catalogue (for bodies read back from the API). */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

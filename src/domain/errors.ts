/**
 * Typed domain errors. Every service throws these; the API's single error
 * handler maps `status` and `code` to the uniform body
 * `{"error": {"code", "message", "details"}}`, and the CLI shows `message`.
 */
export class DomainError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class InvalidInput extends DomainError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(400, 'invalid_input', message, details);
  }
}

export class Unauthenticated extends DomainError {
  constructor(message = 'authentication required') {
    super(401, 'unauthenticated', message);
  }
}

export class Forbidden extends DomainError {
  constructor(message = 'not allowed', code = 'forbidden', details?: Record<string, unknown>) {
    super(403, code, message, details);
  }
}

/** Also used for "exists but is not yours", so the two read the same. */
export class NotFound extends DomainError {
  constructor(what: string) {
    super(404, 'not_found', `${what} not found`);
  }
}

export class Conflict extends DomainError {
  constructor(message: string, code = 'conflict', details?: Record<string, unknown>) {
    super(409, code, message, details);
  }
}

/** An admission refusal: quota, grant, isolation or placement. */
export class AdmissionRefused extends DomainError {
  constructor(code: string, message: string, details?: Record<string, unknown>) {
    super(403, code, message, details);
  }
}

export class RateLimited extends DomainError {
  constructor(readonly retryAfterSeconds: number) {
    super(429, 'rate_limited', `too many failed attempts; try again in ${retryAfterSeconds}s`, {
      retryAfterSeconds,
    });
  }
}

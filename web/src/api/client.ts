import { isApiError } from '../../../src/api/contract.ts';

/** An API refusal or failure, carrying the uniform error body's code and message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** What to show people for any failure: the API's own message, or why the API could not be reached. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof TypeError) return 'Atrium cannot be reached. Check your connection and try again.';
  return err instanceof Error ? err.message : String(err);
}

export interface ApiClient {
  request<T>(method: string, path: string, body?: unknown): Promise<T>;
  get<T>(path: string): Promise<T>;
  text(path: string): Promise<string>;
}

/**
 * The portal's HTTP client: JSON in and out, the session cookie sent by the
 * browser, errors read from the uniform body. `onUnauthenticated` runs when
 * the session has ended (expired, signed out elsewhere, account disabled).
 */
export function createApiClient(opts: { onUnauthenticated: () => void }): ApiClient {
  async function send(method: string, path: string, body?: unknown): Promise<Response> {
    const res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (res.ok) return res;
    const data: unknown = await res.json().catch(() => null);
    const err = isApiError(data)
      ? new ApiError(res.status, data.error.code, data.error.message, data.error.details ?? {})
      : new ApiError(res.status, 'http_' + res.status, `The server answered ${res.status} ${res.statusText}.`);
    if (res.status === 401 && path !== '/api/v1/auth/login') opts.onUnauthenticated();
    throw err;
  }
  return {
    async request<T>(method: string, path: string, body?: unknown): Promise<T> {
      const res = await send(method, path, body);
      return (res.status === 204 ? undefined : await res.json()) as T;
    },
    get<T>(path: string) {
      return this.request<T>('GET', path);
    },
    async text(path: string) {
      return (await send('GET', path)).text();
    },
  };
}

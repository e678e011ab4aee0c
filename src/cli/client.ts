import { errorMessage, isApiError } from '../api/contract.js';
import { CliError, loadCredentials, type Credentials } from './credentials.js';

export { CliError, credentialsPath, forgetCredentials, loadCredentials, normalizeUrl, saveCredentials, type Credentials } from './credentials.js';

/** A small typed client for the REST API; response types come from the API's own schemas. */
export class ApiClient {
  constructor(readonly url: string, private readonly token?: string) {}

  /** A streaming request (event streams, logs): the response, once its status is OK. */
  async raw(method: string, path: string, signal?: AbortSignal): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, { method, headers: this.token ? { authorization: `Bearer ${this.token}` } : {}, ...(signal ? { signal } : {}) });
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new CliError(`cannot reach Atrium at ${this.url}: ${(err as Error).message}`);
    }
    if (!res.ok) {
      const data: unknown = await res.json().catch(() => undefined);
      throw new CliError(errorMessage(data, `HTTP ${res.status}`), res.status === 401 ? 3 : res.status === 404 ? 4 : 1);
    }
    return res;
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(`cannot reach Atrium at ${this.url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let data: unknown;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      throw new CliError(`unexpected ${res.status} response from ${this.url}${path} (not JSON); is this an Atrium server?`);
    }
    if (!res.ok) {
      const code = res.status === 401 ? 3 : res.status === 404 ? 4 : 1;
      const hint = res.status === 401 && isApiError(data) && data.error.code === 'unauthenticated' ? ' (run `atrium login`)' : '';
      throw new CliError(errorMessage(data, `HTTP ${res.status}`) + hint, code);
    }
    return data as T;
  }

  get = <T>(path: string) => this.request<T>('GET', path);
  post = <T>(path: string, body?: unknown) => this.request<T>('POST', path, body);
  put = <T>(path: string, body?: unknown) => this.request<T>('PUT', path, body);
  patch = <T>(path: string, body?: unknown) => this.request<T>('PATCH', path, body);
  delete = <T>(path: string) => this.request<T>('DELETE', path);
}

export function signedIn(): { client: ApiClient; credentials: Credentials } {
  const credentials = loadCredentials();
  if (!credentials) throw new CliError('not signed in; run `atrium login <url>` first', 3);
  return { client: new ApiClient(credentials.url, credentials.token), credentials };
}

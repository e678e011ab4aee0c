import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { errorMessage, isApiError } from '../api/contract.js';

/**
 * Exit codes: 1 refused or failed, 2 usage, 3 not signed in, 4 not found.
 * `detail` is printed after the message as it is, so it must already be
 * fit for a terminal (e.g. a log tail through `showLog`).
 */
export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1, readonly detail = '') {
    super(message);
  }
}

export interface Credentials {
  url: string;
  token: string;
  username: string;
}

export function credentialsPath(): string {
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return process.env.ATRIUM_CREDENTIALS || join(base, 'atrium', 'credentials.json');
}

export function loadCredentials(): Credentials | undefined {
  if (process.env.ATRIUM_TOKEN) {
    return { url: process.env.ATRIUM_URL ?? 'http://127.0.0.1:8080', token: process.env.ATRIUM_TOKEN, username: process.env.ATRIUM_USER ?? '' };
  }
  const path = credentialsPath();
  if (!existsSync(path)) return undefined;
  try {
    const c = JSON.parse(readFileSync(path, 'utf8')) as Credentials;
    if (process.env.ATRIUM_URL) c.url = process.env.ATRIUM_URL;
    return c;
  } catch {
    throw new CliError(`cannot read ${path}; run \`atrium login\` again`, 3);
  }
}

/** Stored with mode 0600 in a 0700 directory: the token is as good as the password. */
export function saveCredentials(c: Credentials): void {
  const path = credentialsPath();
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, JSON.stringify(c, null, 2) + '\n', { mode: 0o600 });
  chmodSync(path, 0o600);
}

export function forgetCredentials(): void {
  rmSync(credentialsPath(), { force: true });
}

export function normalizeUrl(url: string): string {
  const withScheme = /^https?:\/\//.test(url) ? url : `http://${url}`;
  try {
    const u = new URL(withScheme);
    return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
  } catch {
    throw new CliError(`not a URL: ${url}`, 2);
  }
}

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

import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

// Loads nothing but Node's own modules: `atrium ssh --stdio` starts with it alone.

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


import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Command } from 'commander';
import type { Static } from '@sinclair/typebox';
import type { schemas } from '../api/contract.js';
import { ApiClient, CliError, forgetCredentials, loadCredentials, normalizeUrl, saveCredentials, signedIn } from './client.js';
import { listCommand } from './list.js';
import { print, table } from './output.js';
import { ask, askSecret, readStdinAll, readStdinLine } from './prompt.js';

type LoginResult = Static<typeof schemas.LoginResult>;
type Me = Static<typeof schemas.MeView>;
type TokenCreated = Static<typeof schemas.TokenCreated>;
type TokenView = Static<typeof schemas.TokenView>;
type SshKeyView = Static<typeof schemas.SshKeyView>;

type CliLoginStarted = Static<typeof schemas.CliLoginStarted>;
type CliLoginPoll = Static<typeof schemas.CliLoginPoll>;

/**
 * `atrium login --sso`: the server gives a code and a URL; the person opens
 * it in a browser, signs in there and approves the code; meanwhile the CLI
 * polls with a secret only it holds, and gets an API token of theirs.
 */
async function loginSso(url: string, provider: string | undefined, expiresIn: string): Promise<void> {
  const client = new ApiClient(url);
  const started = await client.post<CliLoginStarted>('/api/v1/auth/cli-logins', {
    name: `cli@${hostname().slice(0, 50)}`,
    ...(expiresIn === 'never' ? {} : { expiresIn }),
    ...(provider ? { provider } : {}),
  });
  process.stderr.write(`Open this address in a browser, sign in, and approve the code ${started.code}:\n\n  ${started.verifyUrl}\n\nWaiting for approval (${Math.round(started.expiresInSeconds / 60)} minutes)…\n`);
  const deadline = Date.now() + started.expiresInSeconds * 1000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, started.intervalSeconds * 1000));
    const polled = await client.post<CliLoginPoll>('/api/v1/auth/cli-logins/poll', { pollSecret: started.pollSecret });
    if (polled.state === 'pending') continue;
    if (polled.state === 'expired' || !polled.token || !polled.user) break;
    saveCredentials({ url, token: polled.token, username: polled.user.username });
    process.stdout.write(`Signed in to ${url} as ${polled.user.username}${polled.user.admin ? ' (admin)' : ''}.\n`);
    return;
  }
  throw new CliError(`the code ${started.code} was not approved in time; run atrium login --sso again`);
}

/** login, logout, whoami, tokens, keys: the signed-in person's own things. */
export function registerAccount(program: Command): void {
  program
    .command('login')
    .description('sign in to an Atrium server and keep an API token for the CLI')
    .argument('[url]', 'server URL (default: the last one, or http://127.0.0.1:8080)')
    .option('-u, --username <name>', 'username (asked when omitted)')
    .option('--password-stdin', 'read the password from standard input')
    .option('--sso', 'sign in with single sign-on: open the URL shown, sign in there and approve the code shown here')
    .option('--provider <name>', 'with --sso: the identity provider to sign in with (see the sign-in page); any way the server offers when omitted')
    .option('--expires-in <duration>', 'token lifetime, e.g. 30d or never', '30d')
    .action(async (urlArg: string | undefined, opts: { username?: string; passwordStdin?: boolean; sso?: boolean; provider?: string; expiresIn: string }) => {
      const url = normalizeUrl(urlArg ?? loadCredentials()?.url ?? 'http://127.0.0.1:8080');
      if (opts.provider !== undefined && !opts.sso) throw new CliError('--provider goes with --sso', 2);
      if (opts.sso) return loginSso(url, opts.provider, opts.expiresIn);
      const username = opts.username ?? (await ask('Username: '));
      const password = opts.passwordStdin ? await readStdinLine() : await askSecret('Password: ');
      const client = new ApiClient(url);
      const res = await client.post<LoginResult>('/api/v1/auth/login', {
        username,
        password,
        token: { name: `cli@${hostname().slice(0, 50)}`, ...(opts.expiresIn === 'never' ? {} : { expiresIn: opts.expiresIn }) },
      });
      if (!res.token) throw new CliError('the server did not issue a token');
      saveCredentials({ url, token: res.token, username: res.user.username });
      process.stdout.write(`Signed in to ${url} as ${res.user.username}${res.user.admin ? ' (admin)' : ''}.\n`);
    });

  program
    .command('logout')
    .description("revoke this CLI's token and forget it")
    .action(async () => {
      const credentials = loadCredentials();
      if (!credentials) {
        process.stdout.write('Not signed in.\n');
        return;
      }
      try {
        await new ApiClient(credentials.url, credentials.token).post('/api/v1/auth/logout');
      } catch (err) {
        // A token that is already invalid is as good as revoked; anything else is worth saying.
        if (!(err instanceof CliError && err.exitCode === 3)) throw err;
      } finally {
        forgetCredentials();
      }
      process.stdout.write(`Signed out of ${credentials.url}.\n`);
    });

  program
    .command('whoami')
    .description('show who you are signed in as, and your teams')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const { client, credentials } = signedIn();
      const me = await client.get<Me>('/api/v1/me');
      print(opts.json, me, () =>
        `${me.user.username}${me.user.admin ? ' (platform admin)' : ''} at ${credentials.url}\n` +
        table(['TEAM', 'ROLE', 'PERSONAL'], me.teams.map((t) => [t.name, t.role, t.personal ? 'yes' : ''])),
      );
    });

  program
    .command('password')
    .description('change your password')
    .option('--password-stdin', 'read the current and the new password from standard input, one per line')
    .action(async (opts: { passwordStdin?: boolean }) => {
      const { client } = signedIn();
      let current: string;
      let next: string;
      if (opts.passwordStdin) {
        [current = '', next = ''] = (await readStdinAll()).split('\n');
      } else {
        current = await askSecret('Current password: ');
        next = await askSecret('New password (8 or more characters): ');
        if ((await askSecret('New password again: ')) !== next) throw new CliError('the new passwords differ', 2);
      }
      await client.put('/api/v1/me/password', { current, password: next });
      process.stdout.write('Password changed.\n');
    });

  const tokens = program.command('tokens').description('API tokens for scripts and tools');
  listCommand<TokenView>(tokens, {
    description: 'list your tokens',
    items: async () => (await signedIn().client.get<{ items: TokenView[] }>('/api/v1/me/tokens')).items,
    columns: [['ID', (t) => t.id], ['NAME', (t) => t.name], ['CREATED', (t) => t.createdAt], ['EXPIRES', (t) => t.expiresAt ?? 'never'], ['LAST USED', (t) => t.lastUsedAt]],
  });
  tokens
    .command('create')
    .description('create a token; it is printed once')
    .argument('<name>', 'what the token is for')
    .option('--expires-in <duration>', 'e.g. 90d, 12h, never', 'never')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { expiresIn: string; json?: boolean }) => {
      const { client } = signedIn();
      const res = await client.post<TokenCreated>('/api/v1/me/tokens', { name, ...(opts.expiresIn === 'never' ? {} : { expiresIn: opts.expiresIn }) });
      print(opts.json, res, () => `${res.token}\n`);
      if (!opts.json) process.stderr.write(`Token ${res.info.id} created; it is not shown again. Use it as "Authorization: Bearer <token>".\n`);
    });
  tokens
    .command('rm')
    .description('revoke a token')
    .argument('<id>', 'token id from `atrium tokens ls`')
    .action(async (id: string) => {
      await signedIn().client.delete(`/api/v1/me/tokens/${encodeURIComponent(id)}`);
      process.stdout.write(`Token ${id} revoked.\n`);
    });

  const keys = program.command('keys').description('SSH public keys for the SSH gateway');
  listCommand<SshKeyView>(keys, {
    description: 'list your SSH keys',
    items: async () => (await signedIn().client.get<{ items: SshKeyView[] }>('/api/v1/me/ssh-keys')).items,
    columns: [['ID', (k) => k.id], ['NAME', (k) => k.name], ['FINGERPRINT', (k) => k.fingerprint], ['ADDED', (k) => k.createdAt]],
  });
  keys
    .command('add')
    .description('register a public key (a .pub file, or - for standard input)')
    .argument('<file>', 'public key file, e.g. ~/.ssh/id_ed25519.pub')
    .option('--name <name>', 'a label (default: the key comment)')
    .action(async (file: string, opts: { name?: string }) => {
      const text = file === '-' ? await readStdinAll() : await readFile(file, 'utf8').catch((err: Error) => {
        throw new CliError(`cannot read ${file}: ${err.message}`, 2);
      });
      if (text.includes('PRIVATE KEY')) throw new CliError(`${file} is a private key; pass the .pub file`, 2);
      const key = await signedIn().client.post<SshKeyView>('/api/v1/me/ssh-keys', { publicKey: text.trim(), ...(opts.name ? { name: opts.name } : {}) });
      process.stdout.write(`Added ${key.fingerprint} (${key.name}) as ${key.id}.\n`);
    });
  keys
    .command('rm')
    .description('remove an SSH key')
    .argument('<id>', 'key id from `atrium keys ls`')
    .action(async (id: string) => {
      await signedIn().client.delete(`/api/v1/me/ssh-keys/${encodeURIComponent(id)}`);
      process.stdout.write(`Key ${id} removed.\n`);
    });
}

import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Static } from '@sinclair/typebox';
import type { Command } from 'commander';
import type { schemas } from '../api/contract.js';
import { CliError, signedIn, type ApiClient, type Credentials } from './client.js';
import { resolveRef } from './workspaces.js';

type SshAccessView = Static<typeof schemas.SshAccessView>;
type Entry = SshAccessView['workspaces'][number];

const BEGIN = '# BEGIN atrium';
const END = '# END atrium';

/** The known-hosts file Atrium's SSH entries use: the host keys the control plane holds, never learnt on first use. */
export function knownHostsPath(): string {
  return join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'atrium', 'known_hosts');
}

/** A word for an OpenSSH config line or ProxyCommand (run by the shell): quoted when it needs to be. */
function quote(word: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The command that runs the tunnel: this same CLI, with this Node. */
function tunnelCommand(ref: string): string {
  const main = resolve(fileURLToPath(new URL('../main.js', import.meta.url)));
  return [process.execPath, main, 'ssh', '--stdio', ref].map(quote).join(' ');
}

/** The alias of the gateway's host key in the known-hosts file. */
function gatewayAlias(g: NonNullable<SshAccessView['gateway']>): string {
  return `atrium-gateway.${g.host}.${g.port}`;
}

/** Writes a file whole: a temporary file beside it, then renamed over it. */
function writeAtomic(path: string, content: string, mode: number): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.atrium-${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/** The known-hosts lines for the workspaces (and the gateway). */
export function knownHosts(access: SshAccessView, gateway: boolean): string {
  const lines = access.workspaces.map((w) => `${w.alias} ${w.hostKey.split(' ').slice(0, 2).join(' ')}`);
  if (gateway && access.gateway) lines.push(`${gatewayAlias(access.gateway)} ${access.gateway.hostKey.split(' ').slice(0, 2).join(' ')}`);
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

/** One `Host` entry: through the tunnel (default) or the gateway. */
function hostEntry(w: Entry, access: SshAccessView, via: 'tunnel' | 'gateway', knownHostsFile: string): string[] {
  const common = [`  UserKnownHostsFile ${quote(knownHostsFile)}`, '  StrictHostKeyChecking yes', '  CheckHostIP no'];
  if (via === 'gateway' && access.gateway) {
    return [`Host ${w.alias}`, `  HostName ${access.gateway.host}`, `  Port ${access.gateway.port}`, `  User ${w.gatewayUser}`, `  HostKeyAlias ${gatewayAlias(access.gateway)}`, ...common];
  }
  return [`Host ${w.alias}`, `  HostName ${w.alias}`, '  User jovyan', `  ProxyCommand ${tunnelCommand(`${w.team}/${w.name}`)}`, `  HostKeyAlias ${w.alias}`, ...common];
}

/**
 * The marked block `atrium config-ssh` keeps in an OpenSSH config: one
 * `Host atrium.<team>.<ws>` per workspace the person may enter. It ends with
 * `Host *`, so whatever follows it in the file applies to every host as before.
 */
export function configBlock(access: SshAccessView, credentials: Credentials, via: 'tunnel' | 'gateway', knownHostsFile: string): string {
  const lines = [
    `${BEGIN} (${credentials.url}, as ${credentials.username || 'token'}): written by \`atrium config-ssh\`; re-run it rather than editing here`,
    ...access.workspaces.flatMap((w) => [...hostEntry(w, access, via, knownHostsFile), '']),
    'Host *',
    END,
  ];
  return `${lines.join('\n')}\n`;
}

/** `content` with its Atrium block replaced by `block` (or `block` put first when it has none). */
export function withBlock(content: string, block: string): string {
  const lines = content.split('\n');
  const start = lines.findIndex((l) => l.startsWith(BEGIN));
  const end = start === -1 ? -1 : lines.findIndex((l, i) => i > start && l.startsWith(END));
  if (start !== -1 && end !== -1) {
    return [...lines.slice(0, start), ...block.replace(/\n$/, '').split('\n'), ...lines.slice(end + 1)].join('\n');
  }
  if (start !== -1) throw new CliError(`the Atrium block in the SSH config has "${BEGIN}" but no "${END}"; fix the file by hand first`);
  // first, so that a later `Host *` cannot override its settings (OpenSSH takes the first value it meets)
  return content.length > 0 ? `${block}\n${content}` : block;
}

/** A plain line diff of two texts, enough to show what `config-ssh` would change. */
export function lineDiff(before: string, after: string): string {
  const a = before.split('\n');
  const b = after.split('\n');
  // longest common subsequence: small files, exact output
  const n = a.length;
  const m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      i++;
      j++;
    } else if (i < n && (j >= m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) out.push(`-${a[i++]}`);
    else out.push(`+${b[j++]}`);
  }
  return out.join('\n');
}

async function access(client: ApiClient): Promise<SshAccessView> {
  return client.get<SshAccessView>('/api/v1/me/ssh');
}

/** Runs OpenSSH with its exit code, or rejects when it cannot start. */
function runSsh(args: string[]): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('ssh', args, { stdio: 'inherit' });
    child.on('error', (err) => reject(new CliError(`cannot run ssh (the OpenSSH client): ${err.message}; install openssh-client`)));
    child.on('exit', (code, signal) => resolvePromise(code ?? (signal ? 128 + 1 : 1)));
  });
}

export function registerSsh(program: Command): void {
  program
    .command('ssh')
    .description('open a shell in a workspace, or run a command there, with OpenSSH through the tunnel (it starts a stopped workspace)')
    .argument('<ws>', 'team/ws, team.ws, atrium.team.ws, or ws in your own team')
    .argument('[command...]', 'a command to run instead of a shell')
    .option('--stdio', 'carry one SSH connection over stdin/stdout (the ProxyCommand `atrium config-ssh` writes)')
    .option('-t, --tty', 'ask for a terminal even when running a command')
    .addHelpText('after', '\nExamples:\n  atrium ssh ml/train\n  atrium ssh train -- nvidia-smi\n  ssh -o ProxyCommand="atrium ssh --stdio ml/train" jovyan@atrium.ml.train')
    .action(async (ref: string, command: string[], flags: { tty?: boolean }) => {
      const { client, credentials } = signedIn();
      const { team, ws } = resolveRef(ref, credentials);
      const a = await access(client);
      const entry = a.workspaces.find((w) => w.team === team && w.name === ws);
      if (!entry) throw new CliError(`workspace ${team}/${ws}: not found, or you may not enter it`, 4);
      if (a.keys === 0) throw new CliError('you have no SSH key registered: add one with `atrium keys add ~/.ssh/id_ed25519.pub`');
      const file = knownHostsPath();
      const current = existsSync(file) ? readFileSync(file, 'utf8') : '';
      const mine = `${entry.alias} ${entry.hostKey.split(' ').slice(0, 2).join(' ')}`;
      const kept = current.split('\n').filter((l) => l !== '' && !l.startsWith(`${entry.alias} `));
      if (!current.split('\n').includes(mine)) writeAtomic(file, `${[...kept, mine].join('\n')}\n`, 0o600);
      const args = [
        '-o', `ProxyCommand=${tunnelCommand(`${team}/${ws}`)}`,
        '-o', `HostKeyAlias=${entry.alias}`,
        '-o', `UserKnownHostsFile=${file}`,
        '-o', 'StrictHostKeyChecking=yes',
        '-o', 'CheckHostIP=no',
        '-l', 'jovyan',
        ...(flags.tty ? ['-t'] : []),
        entry.alias,
        ...(command.length > 0 ? ['--', ...command] : []),
      ];
      process.exitCode = await runSsh(args);
    });

  program
    .command('config-ssh')
    .description('write a Host entry for every workspace you may enter into ~/.ssh/config, so `ssh atrium.<team>.<ws>` and VS Code Remote-SSH work; re-run to update')
    .option('--gateway', "connect through the SSH gateway instead of the tunnel (needs the gateway's port to be reachable)")
    .option('--dry-run', 'show what would change, write nothing')
    .option('--file <path>', 'the OpenSSH config to write', join(homedir(), '.ssh', 'config'))
    .action(async (flags: { gateway?: boolean; dryRun?: boolean; file: string }) => {
      const { client, credentials } = signedIn();
      const a = await access(client);
      if (flags.gateway && !a.gateway) throw new CliError('this Atrium runs no SSH gateway (ssh.enabled is false); leave out --gateway to use the tunnel');
      const knownFile = knownHostsPath();
      const block = configBlock(a, credentials, flags.gateway ? 'gateway' : 'tunnel', knownFile);
      const before = existsSync(flags.file) ? readFileSync(flags.file, 'utf8') : '';
      const after = withBlock(before, block);
      const hostsBefore = existsSync(knownFile) ? readFileSync(knownFile, 'utf8') : '';
      const hostsAfter = knownHosts(a, Boolean(flags.gateway));
      if (flags.dryRun) {
        const diff = before === after ? '' : lineDiff(before, after);
        process.stdout.write(diff ? `--- ${flags.file}\n+++ ${flags.file} (after atrium config-ssh)\n${diff}\n` : `${flags.file}: no change\n`);
        if (hostsBefore !== hostsAfter) process.stdout.write(`--- ${knownFile}\n+++ ${knownFile} (after atrium config-ssh)\n${lineDiff(hostsBefore, hostsAfter)}\n`);
        return;
      }
      writeAtomic(knownFile, hostsAfter, 0o600);
      if (before !== after) {
        if (!existsSync(dirname(flags.file))) mkdirSync(dirname(flags.file), { recursive: true, mode: 0o700 });
        // an existing file keeps its mode
        writeAtomic(flags.file, after, existsSync(flags.file) ? statSync(flags.file).mode & 0o777 : 0o600);
      }
      const n = a.workspaces.length;
      process.stdout.write(`${before === after ? 'Unchanged' : 'Updated'} ${flags.file}: ${n} workspace${n === 1 ? '' : 's'} (${flags.gateway ? `through the gateway ${a.gateway!.host}:${a.gateway!.port}` : 'through the tunnel'})\n`);
      for (const w of a.workspaces) process.stdout.write(`  ssh ${w.alias}\n`);
      if (a.keys === 0) process.stdout.write('You have no SSH key registered yet: `atrium keys add ~/.ssh/id_ed25519.pub`\n');
    });
}

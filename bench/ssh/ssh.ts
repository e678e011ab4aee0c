import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../lib/paths.js';

/** The four ways into a shell this benchmark times, anchors first. */
export const PATH_IDS = ['direct', 'bastion', 'gateway', 'tunnel'] as const;
export type PathId = (typeof PATH_IDS)[number];

/** How to reach one shell with OpenSSH's client, and the file to download from there. */
export interface SshPath {
  id: PathId;
  /** what the table calls it */
  label: string;
  /** ssh's arguments before the remote command */
  args: string[];
  env: NodeJS.ProcessEnv;
  /** the random file on the far side, for downloads (relative to the remote home, or absolute) */
  remoteFile: string;
}

/** A word for sh: single-quoted unless it is plain. */
const shq = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`);

/**
 * Options every path shares: no configuration file (Debian's
 * /etc/ssh/ssh_config turns on GSSAPI, which costs each setup a lookup),
 * the run's key and nothing else (no agent), host keys checked strictly
 * against a known_hosts the run writes from what each server says its key
 * is (the plain sshd's own file, Atrium's /api/v1/me/ssh), no connection
 * sharing, no terminal. Ciphers, MACs and key exchange stay OpenSSH's
 * defaults.
 */
export function commonOptions(identity: string, knownHosts: string): string[] {
  return [
    '-F', '/dev/null',
    '-T',
    '-i', identity,
    '-o', 'IdentitiesOnly=yes',
    '-o', 'IdentityAgent=none',
    '-o', 'BatchMode=yes',
    '-o', `UserKnownHostsFile=${knownHosts}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'UpdateHostKeys=no',
    '-o', 'ControlMaster=no',
    '-o', 'ControlPath=none',
    '-o', 'ConnectTimeout=30',
    // debug1 (as -v) says what was negotiated, how many bytes went each way, and whether an exit status came back;
    // it logs per connection, not per packet
    '-o', 'LogLevel=DEBUG1',
  ];
}

export interface PathInputs {
  identity: string;
  knownHosts: string;
  sshdPort: number;
  /** the random file, read in place by the host's sshd for downloads */
  localFile: string;
  atrium?: { url: string; token: string; username: string; team: string; workspace: string; gatewayPort: number; configHome: string };
  /** the workspace's copy of the random file, relative to its home */
  workspaceFile: string;
}

/** The four paths' ssh command lines. */
export function sshPaths(p: PathInputs): Record<PathId, SshPath | undefined> {
  const common = commonOptions(p.identity, p.knownHosts);
  const plainEnv = { ...process.env };
  const direct: SshPath = { id: 'direct', label: 'direct (host sshd)', args: [...common, '-p', String(p.sshdPort), 'root@127.0.0.1'], env: plainEnv, remoteFile: p.localFile };
  // what `ssh -J` does, spelled out: -J refuses a jump host that is the target itself
  const jump = ['ssh', ...common, '-W', '%h:%p', '-p', String(p.sshdPort), 'root@127.0.0.1'].map(shq).join(' ');
  const bastion: SshPath = { id: 'bastion', label: 'bastion (ProxyCommand ssh -W)', args: [...common, '-o', `ProxyCommand=${jump}`, '-p', String(p.sshdPort), 'root@127.0.0.1'], env: plainEnv, remoteFile: p.localFile };
  const a = p.atrium;
  if (!a) return { direct, bastion, gateway: undefined, tunnel: undefined };
  const gateway: SshPath = { id: 'gateway', label: 'Atrium gateway', args: [...common, '-p', String(a.gatewayPort), `${a.team}.${a.workspace}@127.0.0.1`], env: plainEnv, remoteFile: p.workspaceFile };
  const alias = `atrium.${a.team}.${a.workspace}`;
  const proxy = [process.execPath, join(REPO_ROOT, 'dist', 'main.js'), 'ssh', '--stdio', `${a.team}/${a.workspace}`].map(shq).join(' ');
  const tunnelEnv: NodeJS.ProcessEnv = { ...process.env, ATRIUM_URL: a.url, ATRIUM_TOKEN: a.token, ATRIUM_USER: a.username, XDG_CONFIG_HOME: a.configHome };
  delete tunnelEnv.ATRIUM_CREDENTIALS;
  const tunnel: SshPath = { id: 'tunnel', label: 'Atrium tunnel (ssh --stdio)', args: [...common, '-o', `ProxyCommand=${proxy}`, '-o', `HostKeyAlias=${alias}`, `jovyan@${alias}`], env: tunnelEnv, remoteFile: p.workspaceFile };
  return { direct, bastion, gateway, tunnel };
}

export interface SshRun {
  /** spawn to exit, seconds */
  seconds: number;
  stdout: string;
  stderr: string;
  /** SSH payload bytes the client reports it sent and received ("Transferred: …") */
  sent: number;
  received: number;
  /** the channel closed without an exit status (ssh says "Exit status -1" and exits with 255) */
  lostExitStatus: boolean;
  negotiated: { cipher: string; mac: string; kex: string };
}

/**
 * Runs `ssh <path args> <remote command>` to its end and times it from
 * spawn to exit. `stdin` is a file to feed it; `stdout` 'discard' sends
 * what comes back straight to /dev/null (nothing read here, so a download
 * costs this process nothing); `cgroup` is a cgroup.procs file the client
 * joins before it starts, with everything it starts. Throws on a non-zero
 * exit, with what ssh said, except for one that only lost its exit status
 * after the command ran (`lostExitStatus`): the caller decides.
 */
export async function runSsh(
  path: SshPath,
  remote: string,
  opts: { stdin?: string; stdout?: 'discard' | 'keep'; cgroup?: string; timeoutMs?: number } = {},
): Promise<SshRun> {
  const args = [...path.args, remote];
  const input = opts.stdin ? openSync(opts.stdin, 'r') : 'ignore';
  const [command, argv] = opts.cgroup ? ['sh', ['-c', 'echo $$ > "$0" && exec "$@"', opts.cgroup, 'ssh', ...args]] : ['ssh', args];
  const started = performance.now();
  const child = spawn(command, argv, { env: path.env, stdio: [input, opts.stdout === 'keep' ? 'pipe' : 'ignore', 'pipe'] });
  if (typeof input === 'number') closeSync(input);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 600_000);
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  const seconds = (performance.now() - started) / 1000;
  clearTimeout(timer);
  const transferred = /^Transferred: sent (\d+), received (\d+) bytes/m.exec(stderr);
  const lostExitStatus = code === 255 && /^debug1: Exit status -1$/m.test(stderr) && /^Authenticated to /m.test(stderr);
  if (code !== 0 && !lostExitStatus) {
    const said = stderr.split('\n').filter((l) => l.trim() && !l.startsWith('debug1:')).join('\n').trim();
    throw new Error(`ssh to ${path.label} (${remote}) ${signal ? `was killed by ${signal}` : `exited with ${code}`}${said ? `:\n${said}` : ''}`);
  }
  const cipher = /kex: client->server cipher: (\S+) MAC: (\S+)/.exec(stderr);
  return {
    seconds,
    stdout,
    stderr,
    sent: Number(transferred?.[1] ?? NaN),
    received: Number(transferred?.[2] ?? NaN),
    lostExitStatus,
    negotiated: { cipher: cipher?.[1] ?? '?', mac: cipher?.[2] ?? '?', kex: /kex: algorithm: (\S+)/.exec(stderr)?.[1] ?? '?' },
  };
}

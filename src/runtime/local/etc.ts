import { createHash } from 'node:crypto';
import { chmod, chown, cp, mkdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { writeFileAtomic } from './files.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** Host /etc entries a sandbox sees (read-only); never secrets such as ssl/private or shadow. */
const COPIED = [
  'alternatives', 'ssl/certs', 'ssl/openssl.cnf', 'ld.so.cache', 'ld.so.conf', 'ld.so.conf.d', 'localtime', 'timezone',
  'python3', 'python3.11', 'jupyter', 'mime.types', 'protocols', 'services', 'shells', 'bash.bashrc', 'profile', 'profile.d',
  'inputrc', 'ssh/moduli', 'ca-certificates.conf', 'debian_version', 'os-release', 'issue', 'environment', 'login.defs', 'magic',
];

export interface EtcInput {
  hostname: string;
  uid: number;
  gid: number;
  /** the workspace's sshd host key (private, PEM), readable only by the workspace user */
  hostKey: string;
  authorizedKeys: string[];
  /** variables SSH sessions get too (sshd starts them with a clean environment) */
  sessionEnv: Record<string, string>;
  agentForwarding: boolean;
  /** the resolver the sandbox asks (public egress), none when unset */
  resolver?: string | undefined;
  /** the team's volume group, named `team` in the sandbox */
  teamGid?: number | undefined;
}

export function passwd(uid: number, gid: number): string {
  return ['root:x:0:0:root:/root:/usr/sbin/nologin', 'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin', `jovyan:x:${uid}:${gid}:Workspace user:/home/jovyan:/bin/bash`, ''].join('\n');
}

export function group(gid: number, teamGid?: number): string {
  return ['root:x:0:', 'users:x:100:jovyan', 'nogroup:x:65534:', `jovyan:x:${gid}:`, ...(teamGid === undefined ? [] : [`team:x:${teamGid}:jovyan`]), ''].join('\n');
}

/**
 * sshd run per connection as the workspace user (`sshd -i`): keys only, the
 * platform-written authorized_keys, no PAM, forwarding limited to local
 * ports (what VS Code Remote needs; the sandbox's network is loopback only).
 * Agent forwarding is off unless the profile allows it: code in the
 * workspace could otherwise use the agent of whoever connects with `-A` (as
 * VS Code does when asked) to reach their other hosts.
 */
export function sshdConfig(sessionEnv: Record<string, string> = {}, agentForwarding = false): string {
  // sshd takes the first SetEnv line only, so every variable goes on one line, each pair quoted
  const pairs = Object.entries(sessionEnv).map(([k, v]) => `"${k}=${v.replace(/["\\\n]/g, '')}"`);
  return [
    ...(pairs.length > 0 ? [`SetEnv ${pairs.join(' ')}`] : []),
    'HostKey /etc/ssh/ssh_host_ed25519_key',
    'AuthorizedKeysFile /etc/ssh/authorized_keys',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'PermitRootLogin no',
    'AllowUsers jovyan',
    'StrictModes yes',
    'AllowTcpForwarding local',
    `AllowAgentForwarding ${agentForwarding ? 'yes' : 'no'}`,
    'AllowStreamLocalForwarding no',
    'X11Forwarding no',
    'PermitTunnel no',
    'PermitUserEnvironment no',
    'PrintMotd no',
    'PidFile none',
    'LogLevel ERROR',
    'Subsystem sftp /usr/lib/openssh/sftp-server',
    '',
  ].join('\n');
}

/** Names from files; hosts by DNS too, which only a sandbox with public egress has a resolver for. */
const NSSWITCH = 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n';

/** The files each sandbox gets of its own, bind-mounted over the shared base. */
export const OWN_FILES = ['passwd', 'group', 'hostname', 'hosts', 'resolv.conf'] as const;

/**
 * The /etc every sandbox shares (read-only): the host entries above, copied
 * once per version of them, plus static name-service files and empty mount
 * points for each sandbox's own files. Versioned by the host files' change
 * times, so a running sandbox keeps the version it started with.
 */
export async function ensureBaseEtc(root: string): Promise<string> {
  const files: Record<string, string> = {
    'nsswitch.conf': NSSWITCH,
    ...Object.fromEntries(OWN_FILES.map((f) => [f, ''])),
  };
  // what is generated here counts too: a new version of Atrium with other files builds a new base
  const stamps: string[] = [JSON.stringify(files)];
  for (const entry of COPIED) {
    const st = await stat(join('/etc', entry)).catch(() => undefined);
    stamps.push(`${entry}:${st ? st.mtimeMs : '-'}`);
  }
  const version = createHash('sha256').update(stamps.join('|')).digest('hex').slice(0, 16);
  const dir = join(root, version);
  if (existsSync(join(dir, '.complete'))) return dir;
  const building = `${dir}.new`;
  await rm(building, { recursive: true, force: true });
  await mkdir(join(building, 'ssh'), { recursive: true, mode: 0o755 });
  await mkdir(join(building, 'ssl'), { recursive: true, mode: 0o755 });
  for (const entry of COPIED) {
    const source = join('/etc', entry);
    if (existsSync(source)) await cp(source, join(building, entry), { recursive: true, verbatimSymlinks: true, dereference: false });
  }
  for (const [name, content] of Object.entries(files)) await writeFile(join(building, name), content, { mode: 0o644 });
  await symlink('/proc/self/mounts', join(building, 'mtab'));
  await chmod(building, 0o755);
  await writeFile(join(building, '.complete'), '');
  await rm(dir, { recursive: true, force: true });
  await rename(building, dir);
  return dir;
}

/**
 * Writes one sandbox's own /etc files into `dir`: passwd and group naming
 * its user, hostname, hosts, and its sshd directory (config, the
 * platform-written authorized_keys, the host key readable only by the
 * workspace user, and a mount point for the shared moduli).
 */
export async function writeOwnEtc(dir: string, e: EtcInput): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'ssh'), { recursive: true, mode: 0o755 });
  const files: Record<string, string> = {
    passwd: passwd(e.uid, e.gid),
    group: group(e.gid, e.teamGid),
    hostname: `${e.hostname}\n`,
    hosts: `127.0.0.1\tlocalhost ${e.hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n`,
    // the platform's DNS relay with public egress; no resolver at all without
    'resolv.conf': e.resolver ? `nameserver ${e.resolver}\noptions edns0\n` : '',
    'ssh/sshd_config': sshdConfig(e.sessionEnv, e.agentForwarding),
    'ssh/authorized_keys': authorizedKeysFile(e.authorizedKeys),
    'ssh/moduli': '',
  };
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content, { mode: 0o644 });
  const key = join(dir, 'ssh', 'ssh_host_ed25519_key');
  await writeFile(key, e.hostKey, { mode: 0o600 });
  await chown(key, e.uid, e.gid);
  await chmod(dir, 0o755);
}

function authorizedKeysFile(lines: string[]): string {
  return lines.map((k) => `${k.replace(/[\r\n]/g, '')}\n`).join('');
}

/**
 * Replaces a sandbox's `authorized_keys` in its own /etc (`dir`), atomically:
 * each SSH connection starts a fresh sshd, which reads the new list. Nothing
 * when the sandbox has no /etc (it is not running).
 */
export async function rewriteAuthorizedKeys(dir: string, lines: string[]): Promise<void> {
  if (!existsSync(join(dir, 'ssh'))) return;
  await writeFileAtomic(join(dir, 'ssh', 'authorized_keys'), authorizedKeysFile(lines), 0o644);
}

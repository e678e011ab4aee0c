import type { Static } from '@sinclair/typebox';
import type { Command } from 'commander';
import type { schemas } from '../api/contract.js';
import { describeEgress } from '../domain/index.js';
import { CliError, signedIn } from './client.js';
import { allPages, listCommand } from './list.js';
import { print, table } from './output.js';
import { confirm, readStdinLine } from './prompt.js';

type UserView = Static<typeof schemas.UserView>;
type UserCreated = Static<typeof schemas.UserCreated>;
type TeamView = Static<typeof schemas.TeamView>;
type MemberView = Static<typeof schemas.MemberView>;
type QuotaSpec = Static<typeof schemas.QuotaSpec>;
type UsageView = Static<typeof schemas.UsageView>;
type ProfileView = Static<typeof schemas.ProfileView>;

/** Fetches every page of a list. */
const seg = encodeURIComponent;

function quotaRows(q: QuotaSpec, usage?: QuotaSpec) {
  const rows: string[][] = [
    ['cpu', q.cpu, usage?.cpu ?? ''],
    ['memory', q.memory, usage?.memory ?? ''],
    ['storage', q.storage, usage?.storage ?? ''],
    ['workspaces', String(q.workspaces), usage ? String(usage.workspaces) : ''],
  ];
  const types = new Set([...Object.keys(q.gpu), ...Object.keys(usage?.gpu ?? {})]);
  for (const t of types) rows.push([`gpu ${t}`, String(q.gpu[t] ?? 0), usage ? String(usage.gpu[t] ?? 0) : '']);
  return rows;
}

function collectGpu(value: string, acc: Record<string, number> = {}): Record<string, number> {
  const m = /^([a-z0-9][a-z0-9.-]*)=([0-9]+)$/.exec(value);
  if (!m) throw new CliError(`--gpu expects TYPE=COUNT, e.g. a100=2; got ${value}`, 2);
  return { ...acc, [m[1]!]: Number(m[2]) };
}

interface QuotaFlags {
  cpu?: string;
  memory?: string;
  storage?: string;
  workspaces?: string;
  gpu?: Record<string, number>;
}

function quotaPatch(o: QuotaFlags): Partial<QuotaSpec> {
  const patch: Partial<QuotaSpec> = {};
  if (o.cpu) patch.cpu = o.cpu;
  if (o.memory) patch.memory = o.memory;
  if (o.storage) patch.storage = o.storage;
  if (o.workspaces !== undefined) {
    if (!/^[0-9]+$/.test(o.workspaces)) throw new CliError('--workspaces expects a whole number', 2);
    patch.workspaces = Number(o.workspaces);
  }
  if (o.gpu) patch.gpu = o.gpu;
  return patch;
}

function quotaOptions(cmd: Command): Command {
  return cmd
    .option('--cpu <quantity>', 'CPU limit total, e.g. 8 or 500m')
    .option('--memory <quantity>', 'memory limit total, e.g. 32Gi')
    .option('--storage <quantity>', 'home storage total, e.g. 500Gi')
    .option('--workspaces <n>', 'number of workspaces')
    .option('--gpu <type=count>', 'GPUs of a type, e.g. a100=2 (repeatable; replaces the GPU list)', collectGpu);
}

/** users, teams, profiles. */
export function registerAdmin(program: Command): void {
  const users = program.command('users').description('platform users (admins)');
  listCommand<UserView>(users, {
    description: 'list users',
    items: () => allPages('/api/v1/users'),
    columns: [['USERNAME', (u) => u.username], ['ADMIN', (u) => (u.admin ? 'yes' : '')], ['STATUS', (u) => (u.disabled ? 'disabled' : 'active')], ['SSO', (u) => (u.sso ? 'yes' : '')], ['EMAIL', (u) => u.email]],
  });
  users
    .command('create')
    .description('create a local user (and their personal team); prints a generated password unless --password-stdin')
    .argument('<username>')
    .option('--email <email>')
    .option('--admin', 'make them a platform admin')
    .option('--password-stdin', 'read the password from standard input')
    .option('--json', 'print JSON')
    .action(async (username: string, opts: { email?: string; admin?: boolean; passwordStdin?: boolean; json?: boolean }) => {
      const password = opts.passwordStdin ? await readStdinLine() : undefined;
      const res = await signedIn().client.post<UserCreated>('/api/v1/users', {
        username,
        ...(opts.email ? { email: opts.email } : {}),
        ...(opts.admin ? { admin: true } : {}),
        ...(password ? { password } : {}),
      });
      print(opts.json, res, () => `Created user ${res.user.username}${res.password ? `; password: ${res.password} (shown once)` : ''}.\n`);
    });
  const setUser = (verb: string, description: string, body: Record<string, boolean>) =>
    users
      .command(verb)
      .description(description)
      .argument('<username>')
      .action(async (username: string) => {
        await signedIn().client.patch<UserView>(`/api/v1/users/${seg(username)}`, body);
        process.stdout.write(`User ${username}: ${description}.\n`);
      });
  setUser('disable', 'disabled (sessions ended, tokens revoked, workspaces stopping)', { disabled: true });
  setUser('enable', 'enabled', { disabled: false });
  setUser('make-admin', 'made a platform admin', { admin: true });
  setUser('revoke-admin', 'no longer a platform admin', { admin: false });

  const teams = program.command('teams').description('teams, members and quotas');
  listCommand<TeamView, { all?: boolean }>(teams, {
    description: 'list your teams (admins: --all for every team)',
    options: (c) => c.option('--all', 'every team (admins)'),
    items: (_args, opts) => allPages(`/api/v1/teams${opts.all ? '?all=true' : ''}`),
    columns: [['TEAM', (t) => t.name], ['ROLE', (t) => t.role], ['PERSONAL', (t) => (t.personal ? 'yes' : '')], ['SENSITIVE', (t) => (t.sensitive ? 'yes' : '')], ['CPU', (t) => t.quota.cpu], ['MEMORY', (t) => t.quota.memory], ['WORKSPACES', (t) => t.quota.workspaces]],
  });
  quotaOptions(
    teams
      .command('create')
      .description('create a shared team (admins)')
      .argument('<name>')
      .option('--owner <username>', 'its first owner')
      .option('--display-name <text>')
      .option('--sensitive', 'allow only sandboxed profiles'),
  )
    .option('--json', 'print JSON')
    .action(async (name: string, opts: QuotaFlags & { owner?: string; displayName?: string; sensitive?: boolean; json?: boolean }) => {
      const quota = quotaPatch(opts);
      const team = await signedIn().client.post<TeamView>('/api/v1/teams', {
        name,
        ...(opts.owner ? { owner: opts.owner } : {}),
        ...(opts.displayName ? { displayName: opts.displayName } : {}),
        ...(opts.sensitive ? { sensitive: true } : {}),
        ...(Object.keys(quota).length > 0 ? { quota } : {}),
      });
      print(opts.json, team, () => `Created team ${team.name}.\n`);
    });
  teams
    .command('show')
    .description("a team's settings, quota and usage")
    .argument('<team>')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { json?: boolean }) => {
      const { client } = signedIn();
      const team = await client.get<TeamView>(`/api/v1/teams/${seg(name)}`);
      const usage = await client.get<UsageView>(`/api/v1/teams/${seg(name)}/usage`);
      print(opts.json, { ...team, usage: usage.usage }, () =>
        `Team ${team.name}${team.personal ? ' (personal)' : ''}${team.sensitive ? ' (sensitive: sandboxed profiles only)' : ''}; your role: ${team.role ?? '-'}\n\n` +
        table(['RESOURCE', 'QUOTA', 'USED'], quotaRows(usage.quota, usage.usage)),
      );
    });
  teams
    .command('set')
    .description('change team settings (admins)')
    .argument('<team>')
    .option('--sensitive', 'allow only sandboxed profiles')
    .option('--no-sensitive', 'allow every profile')
    .option('--display-name <text>')
    .action(async (name: string, opts: { sensitive?: boolean; displayName?: string }) => {
      const body = { ...(opts.sensitive === undefined ? {} : { sensitive: opts.sensitive }), ...(opts.displayName ? { displayName: opts.displayName } : {}) };
      if (Object.keys(body).length === 0) throw new CliError('nothing to change; pass --sensitive, --no-sensitive or --display-name', 2);
      await signedIn().client.patch(`/api/v1/teams/${seg(name)}`, body);
      process.stdout.write(`Team ${name} updated.\n`);
    });
  teams
    .command('rm')
    .description('delete a shared team (admins); refused while it has workspaces')
    .argument('<team>')
    .option('-y, --yes', 'do not ask')
    .action(async (name: string, opts: { yes?: boolean }) => {
      await confirm(`Delete team ${name}?`, opts.yes);
      await signedIn().client.delete(`/api/v1/teams/${seg(name)}`);
      process.stdout.write(`Team ${name} deleted.\n`);
    });
  quotaOptions(teams.command('quota').description("show or change a team's quota (changing: admins)").argument('<team>'))
    .option('--json', 'print JSON')
    .action(async (name: string, opts: QuotaFlags & { json?: boolean }) => {
      const { client } = signedIn();
      const patch = quotaPatch(opts);
      const quota = Object.keys(patch).length > 0
        ? await client.patch<QuotaSpec>(`/api/v1/teams/${seg(name)}/quota`, patch)
        : await client.get<QuotaSpec>(`/api/v1/teams/${seg(name)}/quota`);
      print(opts.json, quota, () => table(['RESOURCE', 'QUOTA'], quotaRows(quota).map((r) => r.slice(0, 2))));
    });

  const members = teams.command('members').description("a team's members (changing: team owners)");
  listCommand<MemberView>(members, {
    description: 'list members',
    args: ['<team>'],
    items: async ([team]) => (await signedIn().client.get<{ items: MemberView[] }>(`/api/v1/teams/${seg(team!)}/members`)).items,
    columns: [['USERNAME', (m) => m.username], ['ROLE', (m) => m.role], ['SINCE', (m) => m.since]],
  });
  const setRole = async (team: string, user: string, role: string) => {
    if (!['owner', 'editor', 'viewer'].includes(role)) throw new CliError('role must be owner, editor or viewer', 2);
    await signedIn().client.put<MemberView>(`/api/v1/teams/${seg(team)}/members/${seg(user)}`, { role });
    process.stdout.write(`${user} is now ${role} of team ${team}.\n`);
  };
  members
    .command('add')
    .description('add a member')
    .argument('<team>')
    .argument('<username>')
    .option('--role <role>', 'owner, editor or viewer', 'editor')
    .action((team: string, user: string, opts: { role: string }) => setRole(team, user, opts.role));
  members
    .command('role')
    .description("change a member's role")
    .argument('<team>')
    .argument('<username>')
    .argument('<role>', 'owner, editor or viewer')
    .action((team: string, user: string, role: string) => setRole(team, user, role));
  members
    .command('rm')
    .description('remove a member')
    .argument('<team>')
    .argument('<username>')
    .action(async (team: string, user: string) => {
      await signedIn().client.delete(`/api/v1/teams/${seg(team)}/members/${seg(user)}`);
      process.stdout.write(`${user} removed from team ${team}.\n`);
    });

  const profiles = program.command('profiles').description('workspace profiles');
  listCommand<ProfileView>(profiles, {
    description: 'list the profiles you can launch',
    items: async () => (await signedIn().client.get<{ items: ProfileView[] }>('/api/v1/profiles')).items,
    columns: [
      ['PROFILE', (p) => p.name],
      ['NAME', (p) => p.displayName],
      ['ENV', (p) => p.environment],
      ['CPU', (p) => `${p.resources.cpu.guarantee}/${p.resources.cpu.limit}`],
      ['MEMORY', (p) => `${p.resources.memory.guarantee}/${p.resources.memory.limit}`],
      ['GPU', (p) => (p.resources.gpu ? `${p.resources.gpu.count}x ${p.resources.gpu.type}` : '-')],
      ['STORAGE', (p) => p.resources.storage],
      ['TIER', (p) => p.tier],
      ['EGRESS', (p) => describeEgress(p.egress)],
      ['IDLE', (p) => p.idleTimeout],
      ['SSH-AGENT', (p) => (p.agentForwarding ? 'forwarded' : '-')],
    ],
  });
}

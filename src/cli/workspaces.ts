import type { Static } from '@sinclair/typebox';
import type { Command } from 'commander';
import type { schemas } from '../api/index.js';
import { parseWorkspaceRef } from '../domain/index.js';
import { CliError, signedIn, type Credentials } from './client.js';
import { ago, print, table } from './output.js';
import { confirm } from './prompt.js';

type WorkspaceView = Static<typeof schemas.WorkspaceView>;
type Page<T> = { items: T[]; nextCursor: string | null };

/** `team/ws`, `team.ws`, `atrium.team.ws`, or a bare `ws` in your personal team. */
export function resolveRef(ref: string, credentials: Credentials): { team: string; ws: string; path: string } {
  const parsed = parseWorkspaceRef(ref);
  if (!parsed) throw new CliError(`not a workspace reference: ${ref}; use team/workspace or a bare workspace name`, 2);
  const team = parsed.team ?? credentials.username;
  if (!team) throw new CliError('a bare workspace name needs your username; sign in with `atrium login`, or write team/workspace', 2);
  return { team, ws: parsed.workspace, path: `/api/v1/teams/${team}/workspaces/${parsed.workspace}` };
}

function gpu(w: WorkspaceView): string {
  return w.resources.gpu ? `${w.resources.gpu.count}x ${w.resources.gpu.type}` : '-';
}

function describe(w: WorkspaceView): string {
  const rows: Array<[string, string]> = [
    ['workspace', `${w.team}/${w.name}`],
    ['owner', w.owner],
    ['profile', w.profile],
    ['environment', `${w.environment} (${w.tier})`],
    ['phase', w.phase + (w.reason ? `: ${w.reason}` : '')],
    ['desired', w.desired],
    ['cpu', `${w.resources.cpu.guarantee} guaranteed, ${w.resources.cpu.limit} limit`],
    ['memory', `${w.resources.memory.guarantee} guaranteed, ${w.resources.memory.limit} limit`],
    ['gpu', gpu(w) + (w.gpuPool ? ` from pool ${w.gpuPool}` : '')],
    ['storage', w.resources.storage],
    ['shared', w.shared ? 'with the team' : 'no'],
    ['url', w.url],
    ['created', w.createdAt],
    ['last activity', w.lastActivityAt ?? '-'],
  ];
  return rows.map(([k, v]) => `${(k + ':').padEnd(15)}${v}`).join('\n') + '\n';
}

export function registerWorkspaces(program: Command): void {
  const ws = program.command('ws').description('workspaces, addressed as team/workspace (a bare name means your personal team)');

  ws.command('create')
    .description('create a workspace from a profile, and start it')
    .argument('<workspace>', 'team/workspace or workspace')
    .requiredOption('-p, --profile <profile>', 'profile name (see `atrium profiles ls`)')
    .option('--shared', "let the team's editors use it too")
    .option('--no-start', 'create it stopped')
    .option('--json', 'print JSON')
    .action(async (ref: string, opts: { profile: string; shared?: boolean; start: boolean; json?: boolean }) => {
      const { client, credentials } = signedIn();
      const { team, ws: name } = resolveRef(ref, credentials);
      const w = await client.post<WorkspaceView>(`/api/v1/teams/${team}/workspaces`, {
        name,
        profile: opts.profile,
        ...(opts.shared ? { shared: true } : {}),
        start: opts.start,
      });
      print(opts.json, w, () => `Created workspace ${w.team}/${w.name} (${w.profile}); desired ${w.desired}, phase ${w.phase}.\n`);
    });

  ws.command('ls')
    .description('list workspaces in your teams')
    .option('-t, --team <team>', 'only this team')
    .option('--mine', 'only workspaces you own')
    .option('--all', 'every team (admins)')
    .option('--json', 'print JSON')
    .action(async (opts: { team?: string; mine?: boolean; all?: boolean; json?: boolean }) => {
      const { client } = signedIn();
      const base = opts.team ? `/api/v1/teams/${encodeURIComponent(opts.team)}/workspaces?` : `/api/v1/workspaces?${opts.mine ? 'owner=me&' : ''}${opts.all ? 'all=true&' : ''}`;
      const items: WorkspaceView[] = [];
      let cursor: string | null = null;
      do {
        const page: Page<WorkspaceView> = await client.get<Page<WorkspaceView>>(`${base}limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        items.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor);
      const shown = opts.team && opts.mine ? items.filter((w) => w.owner === signedIn().credentials.username) : items;
      print(opts.json, shown, () =>
        shown.length === 0
          ? 'No workspaces yet. Create one with `atrium ws create <name> --profile <profile>`.\n'
          : table(
              ['WORKSPACE', 'OWNER', 'PROFILE', 'PHASE', 'CPU', 'MEMORY', 'GPU', 'AGE', 'ACTIVE'],
              shown.map((w) => [`${w.team}/${w.name}`, w.owner, w.profile, w.phase + (w.desired !== 'running' && w.phase !== 'stopped' ? ` (→${w.desired})` : ''), w.resources.cpu.limit, w.resources.memory.limit, gpu(w), ago(w.createdAt), ago(w.lastActivityAt)]),
            ),
      );
    });

  ws.command('show')
    .description('show one workspace')
    .argument('<workspace>')
    .option('--json', 'print JSON')
    .action(async (ref: string, opts: { json?: boolean }) => {
      const { client, credentials } = signedIn();
      const w = await client.get<WorkspaceView>(resolveRef(ref, credentials).path);
      print(opts.json, w, () => describe(w));
    });

  for (const [verb, description] of [
    ['start', 'ask a workspace to run (admission checks quota again)'],
    ['stop', 'ask a workspace to stop; its home is kept'],
  ] as const) {
    ws.command(verb)
      .description(description)
      .argument('<workspace>')
      .option('--json', 'print JSON')
      .action(async (ref: string, opts: { json?: boolean }) => {
        const { client, credentials } = signedIn();
        const w = await client.post<WorkspaceView>(`${resolveRef(ref, credentials).path}/${verb}`);
        print(opts.json, w, () => `Workspace ${w.team}/${w.name}: desired ${w.desired}, phase ${w.phase}.\n`);
      });
  }

  ws.command('rm')
    .description('delete a workspace (its home is kept unless --purge)')
    .argument('<workspace>')
    .option('--purge', 'delete the home too')
    .option('-y, --yes', 'do not ask')
    .action(async (ref: string, opts: { purge?: boolean; yes?: boolean }) => {
      const { client, credentials } = signedIn();
      const r = resolveRef(ref, credentials);
      await confirm(`Delete workspace ${r.team}/${r.ws}${opts.purge ? ' and its home' : ''}?`, opts.yes);
      await client.delete(`${r.path}${opts.purge ? '?purge=true' : ''}`);
      process.stdout.write(`Workspace ${r.team}/${r.ws} deleted${opts.purge ? ', home to be purged' : ''}.\n`);
    });
}

import type { Static } from '@sinclair/typebox';
import type { Command } from 'commander';
import type { schemas } from '../api/contract.js';
import { parseWorkspaceRef } from '../domain/index.js';
import { type ApiClient, CliError, signedIn, type Credentials } from './client.js';
import { allPages, listCommand } from './list.js';
import { ago, LogPrinter, oneLine, print, showLog, useColor } from './output.js';
import { confirm } from './prompt.js';
import { serverEvents } from './sse.js';

type WorkspaceView = Static<typeof schemas.WorkspaceView>;

/** `team/ws`, `team.ws`, `atrium.team.ws`, or a bare `ws` in your personal team. */
export function resolveRef(ref: string, credentials: Credentials): { team: string; ws: string; path: string } {
  const parsed = parseWorkspaceRef(ref);
  if (!parsed) throw new CliError(`not a workspace reference: ${ref}; use team/workspace or a bare workspace name`, 2);
  const team = parsed.team ?? credentials.username;
  if (!team) throw new CliError('a bare workspace name needs your username; sign in with `atrium login`, or write team/workspace', 2);
  return { team, ws: parsed.workspace, path: `/api/v1/teams/${team}/workspaces/${parsed.workspace}` };
}

const SETTLED: Record<string, string[]> = { running: ['running', 'failed'], stopped: ['stopped', 'failed'] };

/**
 * Shows a workspace's progress from its event stream until it reaches the
 * phase its desired state asks for (or fails). Exits non-zero on failure.
 */
async function waitForPhase(client: ApiClient, w: WorkspaceView, timeoutSeconds: number, show: boolean, since: number): Promise<WorkspaceView> {
  const path = `/api/v1/teams/${w.team}/workspaces/${w.name}`;
  const wanted = SETTLED[w.desired] ?? [w.desired];
  const started = since;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutSeconds * 1000);
  try {
    const current = await client.get<WorkspaceView>(path);
    if (wanted.includes(current.phase) && current.phase !== 'failed') return current;
    const res = await client.raw('GET', `${path}/events`, abort.signal);
    for await (const { data } of serverEvents(res)) {
      const e = JSON.parse(data) as { type: string; message: string; at: string; data: { phase?: string; reason?: string; logTail?: string } };
      // the stream replays the workspace's history first: show only what this request set off
      if (Date.parse(e.at) < started) continue;
      if (show) process.stderr.write(`  ${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s  ${oneLine(e.message)}\n`);
      if (e.type === 'phase' && e.data.phase && wanted.includes(e.data.phase)) {
        const final = await client.get<WorkspaceView>(path);
        if (final.phase === 'failed') {
          const tail = e.data.logTail ? `--- last lines of its log ---\n${showLog(e.data.logTail, useColor(process.stderr))}` : '';
          throw new CliError(`workspace ${w.team}/${w.name} failed: ${oneLine(final.reason ?? 'unknown')}`, 1, tail);
        }
        if (show) process.stdout.write(`Workspace ${w.team}/${w.name} is ${final.phase}${final.phase === 'running' ? ` (${((Date.now() - started) / 1000).toFixed(1)}s)` : ''}.\n`);
        return final;
      }
    }
    throw new CliError('the event stream ended early; see `atrium ws show`');
  } catch (err) {
    if (abort.signal.aborted) throw new CliError(`gave up waiting after ${timeoutSeconds}s; the workspace keeps going (see \`atrium ws show\`)`);
    throw err;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

/** `--volume name`, `--volume team/name` or either with `:/path`. */
function collectVolume(value: string, acc: Array<{ volume: string; path?: string }>): Array<{ volume: string; path?: string }> {
  const at = value.indexOf(':');
  return [...acc, at < 0 ? { volume: value } : { volume: value.slice(0, at), path: value.slice(at + 1) }];
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
    ['phase', w.phase + (w.reason ? `: ${oneLine(w.reason)}` : '')],
    ['desired', w.desired],
    ['cpu', `${w.resources.cpu.guarantee} guaranteed, ${w.resources.cpu.limit} limit`],
    ['memory', `${w.resources.memory.guarantee} guaranteed, ${w.resources.memory.limit} limit`],
    ['gpu', gpu(w) + (w.gpuPool ? ` from pool ${w.gpuPool}` : '')],
    ['storage', w.resources.storage],
    ['image', w.image ?? "the host's /usr"],
    ['volumes', w.volumes.length === 0 ? '-' : w.volumes.map((v) => `${v.volume} at ${v.path}`).join(', ')],
    ['shared', w.shared ? 'with the team' : 'no'],
    ['url', w.url],
    ...(w.identity
      ? ([
          ['identity', `${w.identity.subject} (aud ${w.identity.audiences.join(', ')}; issuer ${w.identity.issuer})`],
          ['token', w.identity.tokenExpiresAt ? `${w.identity.tokenFile}, valid until ${w.identity.tokenExpiresAt} (replaced before)` : 'none (not running)'],
        ] as Array<[string, string]>)
      : []),
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
    .option('-v, --volume <volume[:path]>', "mount a team volume (or <team>/<name>, a dataset published to the team) at /data/<name> or the path given, under /home/jovyan or /data; repeatable", collectVolume, [])
    .option('-d, --detach', 'return at once instead of showing progress until it runs or fails')
    .option('--timeout <seconds>', 'give up waiting after this long', '300')
    .option('--json', 'print JSON')
    .action(async (ref: string, opts: { profile: string; shared?: boolean; start: boolean; volume: Array<{ volume: string; path?: string }>; detach?: boolean; timeout: string; json?: boolean }) => {
      const { client, credentials } = signedIn();
      const { team, ws: name } = resolveRef(ref, credentials);
      const since = Date.now() - 50;
      const w = await client.post<WorkspaceView>(`/api/v1/teams/${team}/workspaces`, {
        name,
        profile: opts.profile,
        ...(opts.shared ? { shared: true } : {}),
        start: opts.start,
        ...(opts.volume.length > 0 ? { volumes: opts.volume } : {}),
      });
      if (!opts.json) process.stdout.write(`Created workspace ${w.team}/${w.name} (${w.profile}).\n`);
      const final = opts.start && !opts.detach ? await waitForPhase(client, w, Number(opts.timeout), !opts.json, since) : w;
      if (opts.json) print(true, final, () => '');
      else if (opts.detach || !opts.start) process.stdout.write(`Desired ${final.desired}, phase ${final.phase}.\n`);
    });

  listCommand<WorkspaceView, { team?: string; mine?: boolean; all?: boolean }>(ws, {
    description: 'list workspaces in your teams',
    options: (c) => c.option('-t, --team <team>', 'only this team').option('--mine', 'only workspaces you own').option('--all', 'every team (admins)'),
    items: async (_args, opts) => {
      const items = await allPages<WorkspaceView>(opts.team ? `/api/v1/teams/${encodeURIComponent(opts.team)}/workspaces` : `/api/v1/workspaces?${opts.mine ? 'owner=me&' : ''}${opts.all ? 'all=true' : ''}`);
      return opts.team && opts.mine ? items.filter((w) => w.owner === signedIn().credentials.username) : items;
    },
    empty: 'No workspaces yet. Create one with `atrium ws create <name> --profile <profile>`.',
    columns: [
      ['WORKSPACE', (w) => `${w.team}/${w.name}`],
      ['OWNER', (w) => w.owner],
      ['PROFILE', (w) => w.profile],
      ['PHASE', (w) => w.phase + (w.desired !== 'running' && w.phase !== 'stopped' ? ` (→${w.desired})` : '')],
      ['CPU', (w) => w.resources.cpu.limit],
      ['MEMORY', (w) => w.resources.memory.limit],
      ['GPU', gpu],
      ['AGE', (w) => ago(w.createdAt)],
      ['ACTIVE', (w) => ago(w.lastActivityAt)],
    ],
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
      .option('-d, --detach', 'return at once instead of waiting for the workspace to get there')
      .option('--timeout <seconds>', 'give up waiting after this long', '300')
      .option('--json', 'print JSON')
      .action(async (ref: string, opts: { detach?: boolean; timeout: string; json?: boolean }) => {
        const { client, credentials } = signedIn();
        const since = Date.now() - 50;
        const w = await client.post<WorkspaceView>(`${resolveRef(ref, credentials).path}/${verb}`);
        const final = opts.detach ? w : await waitForPhase(client, w, Number(opts.timeout), !opts.json, since);
        print(opts.json, final, () => (opts.detach ? `Workspace ${w.team}/${w.name}: desired ${w.desired}, phase ${w.phase}.\n` : ''));
      });
  }

  ws.command('logs')
    .description("show the app's output, filtered for the terminal")
    .addHelpText(
      'after',
      `
What the app printed is shown without escape sequences and control characters
(colours, cursor moves, terminal title and clipboard writes, carriage returns):
only its text reaches your terminal. Atrium's own lines read
"[atrium HH:MM:SS] …" (coloured on a terminal); an app line that merely looks
like one is shown as "[app] [atrium …". The raw log, with Atrium's lines marked
by a leading 0x1E byte, is GET /api/v1/teams/<team>/workspaces/<ws>/logs.`,
    )
    .argument('<workspace>')
    .option('-f, --follow', 'keep printing new output')
    .option('-n, --tail <lines>', 'how many of the last lines', '200')
    .action(async (ref: string, opts: { follow?: boolean; tail: string }) => {
      const { client, credentials } = signedIn();
      if (!/^[0-9]+$/.test(opts.tail)) throw new CliError('--tail expects a number of lines', 2);
      const res = await client.raw('GET', `${resolveRef(ref, credentials).path}/logs?tail=${opts.tail}${opts.follow ? '&follow=true' : ''}`);
      const out = new LogPrinter((text) => process.stdout.write(text), useColor(process.stdout));
      const decoder = new TextDecoder();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) out.push(decoder.decode(chunk, { stream: true }));
      out.push(decoder.decode());
      out.end();
    });

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

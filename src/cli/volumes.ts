import type { Static } from '@sinclair/typebox';
import type { Command } from 'commander';
import type { schemas } from '../api/contract.js';
import { CliError, signedIn } from './client.js';
import { listCommand } from './list.js';
import { print, table } from './output.js';
import { confirm } from './prompt.js';

type VolumeView = Static<typeof schemas.VolumeView>;

const seg = encodeURIComponent;

/** `<team>/<name>`, as the volume commands take it. */
function volumeRef(ref: string): { team: string; name: string } {
  const m = /^([a-z][a-z0-9-]*)\/([a-z][a-z0-9-]*)$/.exec(ref);
  if (!m) throw new CliError(`expected <team>/<volume>, got ${JSON.stringify(ref)}`, 2);
  return { team: m[1]!, name: m[2]! };
}

const path = (r: { team: string; name: string }) => `/api/v1/teams/${seg(r.team)}/volumes/${seg(r.name)}`;

function describe(v: VolumeView): string {
  return table(['', ''], [
    ['volume', `${v.team}/${v.name}`],
    ['size', v.size],
    ['read-only for', v.readOnlyFor === 'viewers' ? "workspaces of the team's viewers" : '-'],
    ['published to', v.sharedWith.length === 0 ? '-' : `${v.sharedWith.join(', ')} (read-only)`],
    ['mounted by', v.mountedBy.length === 0 ? '-' : v.mountedBy.join(', ')],
    ['created', v.createdAt],
  ]).split('\n').slice(1).join('\n');
}

/** `atrium volumes`: a team's shared storage, and datasets published to teams. */
export function registerVolumes(program: Command): void {
  const volumes = program.command('volumes').alias('vol').description("team volumes: storage a team's workspaces share, under its storage quota; datasets are volumes published read-only to other teams");

  listCommand<VolumeView & { kind: string }>(volumes, {
    description: "a team's volumes, and the datasets published to it",
    args: ['<team>'],
    items: async ([team]) => {
      const r = await signedIn().client.get<{ items: VolumeView[]; datasets: VolumeView[] }>(`/api/v1/teams/${seg(team!)}/volumes`);
      return [...r.items.map((v) => ({ ...v, kind: v.sharedWith.length > 0 ? 'dataset' : 'volume' })), ...r.datasets.map((v) => ({ ...v, kind: 'dataset (read-only)' }))];
    },
    empty: 'No volumes; create one with `atrium volumes create <team>/<name> --size 10Gi`.',
    columns: [
      ['VOLUME', (v) => `${v.team}/${v.name}`],
      ['KIND', (v) => v.kind],
      ['SIZE', (v) => v.size],
      ['READ-ONLY FOR', (v) => (v.readOnlyFor === 'viewers' ? 'viewers' : '-')],
      ['PUBLISHED TO', (v) => (v.sharedWith.length === 0 ? '-' : v.sharedWith.join(','))],
      ['MOUNTED BY', (v) => (v.mountedBy.length === 0 ? '-' : v.mountedBy.join(','))],
    ],
  });

  volumes
    .command('create')
    .description("create a volume; its size counts against the team's storage quota (team editors)")
    .argument('<team/volume>')
    .requiredOption('--size <quantity>', 'e.g. 100Gi')
    .option('--read-only-for <who>', 'viewers: read-only in workspaces of the team\'s viewers')
    .option('--json', 'print JSON')
    .action(async (ref: string, opts: { size: string; readOnlyFor?: string; json?: boolean }) => {
      const r = volumeRef(ref);
      if (opts.readOnlyFor !== undefined && opts.readOnlyFor !== 'viewers') throw new CliError('--read-only-for takes viewers', 2);
      const v = await signedIn().client.post<VolumeView>(`/api/v1/teams/${seg(r.team)}/volumes`, { name: r.name, size: opts.size, ...(opts.readOnlyFor ? { readOnlyFor: opts.readOnlyFor } : {}) });
      print(opts.json, v, () => `Volume ${v.team}/${v.name} created (${v.size}); mount it with \`atrium ws create … --volume ${v.name}\`.\n`);
    });

  volumes
    .command('show')
    .description('one volume')
    .argument('<team/volume>')
    .option('--json', 'print JSON')
    .action(async (ref: string, opts: { json?: boolean }) => {
      const v = await signedIn().client.get<VolumeView>(path(volumeRef(ref)));
      print(opts.json, v, () => `${describe(v)}\n`);
    });

  volumes
    .command('resize')
    .description("grow a volume (checked against the team's storage quota; volumes never shrink); running workspaces see the new size at once")
    .argument('<team/volume>')
    .requiredOption('--size <quantity>', 'the new size, e.g. 200Gi')
    .action(async (ref: string, opts: { size: string }) => {
      const v = await signedIn().client.patch<VolumeView>(path(volumeRef(ref)), { size: opts.size });
      process.stdout.write(`Volume ${v.team}/${v.name} is ${v.size}.\n`);
    });

  volumes
    .command('set')
    .description('change who may only read a volume (team editors)')
    .argument('<team/volume>')
    .requiredOption('--read-only-for <who>', 'viewers, or none')
    .action(async (ref: string, opts: { readOnlyFor: string }) => {
      if (opts.readOnlyFor !== 'viewers' && opts.readOnlyFor !== 'none') throw new CliError('--read-only-for takes viewers or none', 2);
      await signedIn().client.patch<VolumeView>(path(volumeRef(ref)), { readOnlyFor: opts.readOnlyFor });
      process.stdout.write(`Volume ${ref} updated; workspaces see it at their next start.\n`);
    });

  volumes
    .command('publish')
    .description('publish a volume read-only to other teams, as a dataset they mount as <team>/<name> (admins); --to "" unpublishes')
    .argument('<team/volume>')
    .requiredOption('--to <teams>', 'comma-separated team names')
    .action(async (ref: string, opts: { to: string }) => {
      const teams = opts.to.split(',').map((t) => t.trim()).filter(Boolean);
      const v = await signedIn().client.patch<VolumeView>(path(volumeRef(ref)), { sharedWith: teams });
      process.stdout.write(v.sharedWith.length > 0 ? `Volume ${ref} is published read-only to ${v.sharedWith.join(', ')}.\n` : `Volume ${ref} is no longer published.\n`);
    });

  volumes
    .command('rm')
    .description('delete a volume and its data (team owners); refused while a workspace mounts it')
    .argument('<team/volume>')
    .option('-y, --yes', 'do not ask')
    .action(async (ref: string, opts: { yes?: boolean }) => {
      const r = volumeRef(ref);
      await confirm(`Delete volume ${ref} and everything on it?`, opts.yes);
      await signedIn().client.delete(path(r));
      process.stdout.write(`Volume ${ref} deleted.\n`);
    });
}

import { Type, type Static } from '@sinclair/typebox';
import { AdmissionRefused } from './errors.js';
import { NAME_PATTERN } from './names.js';
import { formatBytes } from './quantity.js';
import type { Quota, Usage } from './quota.js';

/**
 * Team volumes (design §5): storage a team's workspaces share, sized under
 * the team's storage quota; published read-only to other teams, a volume is
 * a dataset. Workspaces name the volumes they mount, at a path under
 * /home/jovyan or /data.
 */

const NAME_BODY = NAME_PATTERN.slice(1, -1);

/** A volume as a workspace or profile names it: `<name>` (its own team's) or `<team>/<name>` (a dataset another team published to it). */
export const VolumeRef = Type.String({ pattern: `^(${NAME_BODY}/)?${NAME_BODY}$`, maxLength: 65, description: 'a volume of the team, or <team>/<name> for a dataset published to it' });

/** Where a volume appears in a workspace. */
export const VolumePath = Type.String({
  pattern: '^/(home/jovyan|data)(/[A-Za-z0-9_][A-Za-z0-9._-]{0,63}){1,4}$',
  maxLength: 200,
  description: 'a path under /home/jovyan or /data, e.g. /data/corpus (default: /data/<name>)',
});

export const VolumeMountSpec = Type.Object(
  { volume: VolumeRef, path: Type.Optional(VolumePath) },
  { additionalProperties: false },
);
export type VolumeMountSpec = Static<typeof VolumeMountSpec>;

export const READ_ONLY_FOR = ['none', 'viewers'] as const;
export type ReadOnlyFor = (typeof READ_ONLY_FOR)[number];

/** A volume a workspace mounts, as decided at admission and again at each start. */
export interface VolumeMount {
  volumeId: string;
  /** the owning team's name and the volume's */
  team: string;
  name: string;
  path: string;
}

/** The path a mount gets when none is named. */
export const defaultVolumePath = (name: string) => `/data/${name}`;

/** Refuses a volume (new, or grown by `bytes`) that does not fit the team's storage quota. */
export function admitVolume(team: { name: string; quota: Quota }, usage: Usage, bytes: number): void {
  if (bytes <= 0 || usage.storageBytes + bytes <= team.quota.storageBytes) return;
  const left = Math.max(0, team.quota.storageBytes - usage.storageBytes);
  throw new AdmissionRefused('quota_exceeded', `team ${team.name} storage: ${formatBytes(bytes)} requested, ${formatBytes(left)} of ${formatBytes(team.quota.storageBytes)} left`, {
    team: team.name,
    dimension: 'storage',
    requested: formatBytes(bytes),
    left: formatBytes(left),
    limit: formatBytes(team.quota.storageBytes),
  });
}

/** Mount paths must not repeat or nest inside each other (one would hide the other). */
export function overlappingPaths(paths: string[]): [string, string] | undefined {
  const sorted = [...paths].sort();
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1] || sorted[i]!.startsWith(`${sorted[i - 1]}/`)) return [sorted[i - 1]!, sorted[i]!];
  }
  return undefined;
}

import type { Selectable } from 'kysely';
import { sql } from 'kysely';
import {
  AdmissionRefused,
  admitVolume,
  Conflict,
  defaultVolumePath,
  formatBytes,
  InvalidInput,
  NotFound,
  overlappingPaths,
  type ReadOnlyFor,
  type Role,
  type VolumeMount,
} from '../domain/index.js';
import { isUniqueViolation, newId, transaction, type Executor, type StoreContext } from './common.js';
import type { VolumesTable } from './schema.js';
import { lockTeam } from './admission.js';
import { teamUsage } from './teams.js';

export interface Volume {
  id: string;
  teamId: string;
  team: string;
  name: string;
  sizeBytes: number;
  readOnlyFor: ReadOnlyFor;
  /** teams it is published to, read-only (a dataset when any) */
  sharedWith: Array<{ id: string; name: string }>;
  createdAt: number;
  updatedAt: number;
}

/** A mount as a runtime takes it: the volume, where, and whether the kernel keeps it read-only. */
export interface ResolvedMount extends VolumeMount {
  sizeBytes: number;
  readOnly: boolean;
}

/** Default first host gid of a team's volumes. */
export const TEAM_GID_BASE = 3_000_000;

async function toVolume(db: Executor, r: Selectable<VolumesTable>, teamName?: string): Promise<Volume> {
  const shared = JSON.parse(r.shared_with) as string[];
  const names = shared.length === 0 ? [] : await db.selectFrom('teams').select(['id', 'name']).where('id', 'in', shared).execute();
  const team = teamName ?? (await db.selectFrom('teams').select('name').where('id', '=', r.team_id).executeTakeFirst())?.name ?? '';
  return {
    id: r.id,
    teamId: r.team_id,
    team,
    name: r.name,
    sizeBytes: Number(r.size_bytes),
    readOnlyFor: r.read_only_for as ReadOnlyFor,
    sharedWith: names.map((n) => ({ id: n.id, name: n.name })).sort((a, b) => a.name.localeCompare(b.name)),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

/** Workspaces (not deleted) that mount the volume. */
async function mountedBy(db: Executor, volumeId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('workspaces')
    .select(['team_name', 'name'])
    .where('desired', '<>', 'deleted')
    .where('spec', 'like', `%"volumeId":"${volumeId}"%`)
    .execute();
  return rows.map((r) => `${r.team_name}/${r.name}`);
}

  /**
   * Resolves what a new workspace of `team` mounts: each reference names
   * a volume of the team or `<team>/<name>`, a dataset published to it;
   * anything else is refused (`volume_not_allowed`).
   */
export async function resolveMounts(ex: Executor, team: { id: string; name: string }, refs: Array<{ volume: string; path?: string | undefined }>): Promise<VolumeMount[]> {
    const mounts: VolumeMount[] = [];
    for (const ref of refs) {
      const [owner, name] = ref.volume.includes('/') ? (ref.volume.split('/') as [string, string]) : [team.name, ref.volume];
      const row = await ex
        .selectFrom('volumes')
        .innerJoin('teams', 'teams.id', 'volumes.team_id')
        .select(['volumes.id', 'volumes.name', 'volumes.team_id', 'volumes.shared_with', 'teams.name as team_name'])
        .where('teams.name', '=', owner)
        .where('volumes.name', '=', name)
        .executeTakeFirst();
      const allowed = row && (row.team_id === team.id || (JSON.parse(row.shared_with) as string[]).includes(team.id));
      if (!row || !allowed) {
        throw new AdmissionRefused('volume_not_allowed', `volume ${ref.volume}: team ${team.name} has no such volume${owner === team.name ? '' : `, and ${owner} has published none of that name to it`}`, { volume: ref.volume });
      }
      mounts.push({ volumeId: row.id, team: row.team_name, name: row.name, path: ref.path ?? defaultVolumePath(row.name) });
    }
    const clash = overlappingPaths(mounts.map((m) => m.path));
    if (clash) throw new InvalidInput(`volumes: ${clash[0]} and ${clash[1]} overlap; give each volume its own path`);
    return mounts;
  }

/** Team volumes and datasets: sized under the team's storage quota, mountable by its workspaces and by teams it is published to. */
export function createVolumesRepo(ctx: StoreContext) {
  const { db, dialect } = ctx;

  const changed = () => ctx.bus.emit('volumes');

  return {
    async ofTeam(teamId: string): Promise<Volume[]> {
      const rows = await db.selectFrom('volumes').selectAll().where('team_id', '=', teamId).orderBy('name').execute();
      return Promise.all(rows.map((r) => toVolume(db, r)));
    },

    /** Datasets other teams published to this one. */
    async sharedWith(teamId: string): Promise<Volume[]> {
      const rows = await db.selectFrom('volumes').selectAll().where('shared_with', 'like', `%"${teamId}"%`).orderBy('name').execute();
      return Promise.all(rows.map((r) => toVolume(db, r)));
    },

    async all(): Promise<Volume[]> {
      const rows = await db.selectFrom('volumes').selectAll().orderBy('team_id').orderBy('name').execute();
      return Promise.all(rows.map((r) => toVolume(db, r)));
    },

    async byName(teamId: string, name: string): Promise<Volume | undefined> {
      const r = await db.selectFrom('volumes').selectAll().where('team_id', '=', teamId).where('name', '=', name).executeTakeFirst();
      return r && toVolume(db, r);
    },

    mountedBy: (volumeId: string) => mountedBy(db, volumeId),

    /** Creates a volume, refused when its size does not fit the team's storage quota. */
    async create(input: { teamId: string; name: string; sizeBytes: number; readOnlyFor: ReadOnlyFor }): Promise<Volume> {
      if (input.sizeBytes < 16 << 20) throw new InvalidInput('size: a volume needs at least 16Mi');
      try {
        const v = await transaction(ctx, async (tx) => {
          const team = await lockTeam(tx, dialect, input.teamId);
          admitVolume(team, await teamUsage(tx.db, team.id), input.sizeBytes);
          const now = ctx.now();
          const id = newId('v');
          await tx.db.insertInto('volumes').values({ id, team_id: team.id, name: input.name, size_bytes: input.sizeBytes, read_only_for: input.readOnlyFor, shared_with: '[]', created_at: now, updated_at: now }).execute();
          await tx.event({ teamId: team.id, workspaceId: null, type: 'volume', message: `volume ${team.name}/${input.name} created`, data: { volume: input.name } });
          return toVolume(tx.db, (await tx.db.selectFrom('volumes').selectAll().where('id', '=', id).executeTakeFirstOrThrow()), team.name);
        });
        changed();
        return v;
      } catch (err) {
        if (isUniqueViolation(err)) throw new Conflict(`volume ${input.name} already exists in this team`, 'name_taken');
        throw err;
      }
    },

    /** Grows a volume (volumes never shrink: a filesystem cannot give back space its files may use), or changes who reads it only. */
    async update(v: Volume, patch: { sizeBytes?: number; readOnlyFor?: ReadOnlyFor; sharedWith?: string[] }): Promise<Volume> {
      const out = await transaction(ctx, async (tx) => {
        const team = await lockTeam(tx, dialect, v.teamId);
        const row = await tx.db.selectFrom('volumes').selectAll().where('id', '=', v.id).executeTakeFirst();
        if (!row) throw new NotFound(`volume ${v.team}/${v.name}`);
        const set: Partial<VolumesTable> = { updated_at: ctx.now() };
        const said: string[] = [];
        if (patch.sizeBytes !== undefined && patch.sizeBytes !== Number(row.size_bytes)) {
          if (patch.sizeBytes < Number(row.size_bytes)) throw new InvalidInput(`size: volumes only grow (${v.team}/${v.name} has ${formatBytes(Number(row.size_bytes))})`);
          admitVolume(team, await teamUsage(tx.db, team.id), patch.sizeBytes - Number(row.size_bytes));
          set.size_bytes = patch.sizeBytes;
          said.push('resized');
        }
        if (patch.readOnlyFor !== undefined) set.read_only_for = patch.readOnlyFor;
        if (patch.sharedWith !== undefined) {
          const ids = [...new Set(patch.sharedWith)].filter((id) => id !== team.id).sort();
          set.shared_with = JSON.stringify(ids);
          said.push(ids.length > 0 ? 'published' : 'unpublished');
        }
        await tx.db.updateTable('volumes').set(set).where('id', '=', v.id).execute();
        await tx.event({ teamId: team.id, workspaceId: null, type: 'volume', message: `volume ${team.name}/${v.name} ${said.join(' and ') || 'changed'}`, data: { volume: v.name } });
        return toVolume(tx.db, (await tx.db.selectFrom('volumes').selectAll().where('id', '=', v.id).executeTakeFirstOrThrow()), team.name);
      });
      changed();
      return out;
    },

    /** Deletes a volume and its data; refused while a workspace (running or not) mounts it. */
    async remove(v: Volume): Promise<void> {
      await transaction(ctx, async (tx) => {
        const users = await mountedBy(tx.db, v.id);
        if (users.length > 0) throw new Conflict(`volume ${v.team}/${v.name} is mounted by ${users.join(', ')}; delete those workspaces first`, 'volume_in_use', { workspaces: users });
        await tx.db.deleteFrom('volumes').where('id', '=', v.id).execute();
        await tx.event({ teamId: v.teamId, workspaceId: null, type: 'volume', message: `volume ${v.team}/${v.name} deleted`, data: { volume: v.name } });
      });
      changed();
    },

    resolve: resolveMounts,

    /**
     * What a workspace mounts at its next start, as it stands now: sizes,
     * and read-only where the volume is another team's dataset or its team
     * keeps it read-only for viewers and the owner is one. Volumes deleted
     * meanwhile (impossible while mounted) are left out.
     */
    async forStart(ws: { teamId: string; ownerId: string; mounts: VolumeMount[] }): Promise<ResolvedMount[]> {
      if (ws.mounts.length === 0) return [];
      const role = (await db.selectFrom('memberships').select('role').where('team_id', '=', ws.teamId).where('user_id', '=', ws.ownerId).executeTakeFirst())?.role as Role | undefined;
      const out: ResolvedMount[] = [];
      for (const m of ws.mounts) {
        const r = await db.selectFrom('volumes').selectAll().where('id', '=', m.volumeId).executeTakeFirst();
        if (!r) continue;
        const foreign = r.team_id !== ws.teamId;
        const readOnly = foreign || (r.read_only_for === 'viewers' && (role === undefined || role === 'viewer'));
        out.push({ ...m, sizeBytes: Number(r.size_bytes), readOnly });
      }
      return out;
    },

    /** The host group of a team's volumes (local runtime): allocated at or above `base` the first time, never reused. */
    async teamGid(teamId: string, base = TEAM_GID_BASE): Promise<number> {
      const found = await db.selectFrom('team_gids').select('gid').where('team_id', '=', teamId).executeTakeFirst();
      if (found) return Number(found.gid);
      return transaction(ctx, async (tx) => {
        if (dialect === 'postgres') await sql`select pg_advisory_xact_lock(727102)`.execute(tx.db);
        const again = await tx.db.selectFrom('team_gids').select('gid').where('team_id', '=', teamId).executeTakeFirst();
        if (again) return Number(again.gid);
        const max = await tx.db.selectFrom('team_gids').select((eb) => eb.fn.max<number>('gid').as('m')).executeTakeFirst();
        const gid = Math.max(base, Number(max?.m ?? 0) + 1);
        await tx.db.insertInto('team_gids').values({ team_id: teamId, gid }).execute();
        return gid;
      });
    },
  };
}

export type VolumesRepo = ReturnType<typeof createVolumesRepo>;

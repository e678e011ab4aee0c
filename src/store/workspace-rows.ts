import type { Selectable } from 'kysely';
import type { DesiredState, Phase, Profile, VolumeMount, WorkspaceResources } from '../domain/index.js';
import type { Executor, SqlText, StoreContext } from './common.js';
import type { WorkspacesTable } from './schema.js';

// The one reader of a workspace row: the intent repository (workspaces.ts) and
// the reconciler's state interface (workspace-states.ts) both select and map
// rows through this module, so a column is read and converted in one place.

/** What a workspace runs, copied from its profile when it was created. */
export interface WorkspaceSettings {
  environment: Profile['environment'];
  image?: string;
  tier: Profile['tier'];
  egress: Profile['egress'];
  idleTimeoutSeconds: number | null;
  /** absent in workspaces created before profiles had the setting: off */
  agentForwarding?: boolean;
  /** the volumes it mounts, from its profile and its own request; absent: none */
  volumes?: VolumeMount[];
}

export interface Workspace {
  id: string;
  teamId: string;
  team: string;
  name: string;
  ownerId: string;
  owner: string;
  profile: string;
  shared: boolean;
  desired: DesiredState;
  phase: Phase;
  reason: string;
  resources: WorkspaceResources;
  gpuPoolId: string | null;
  /** name of the GPU pool its GPUs come from */
  gpuPool: string | null;
  /** the Kubernetes cluster placement chose, for the workspace's life; '' on this machine */
  cluster: string;
  spec: WorkspaceSettings;
  purge: boolean;
  generation: number;
  observedGeneration: number;
  createdAt: number;
  updatedAt: number;
  startedAt: number | null;
  lastActivityAt: number | null;
}

/** What lists show of a workspace: all that `workspaceView` reads, none of the reconciler's bookkeeping. */
export type WorkspaceSummary = Omit<Workspace, 'teamId' | 'ownerId' | 'gpuPoolId' | 'purge' | 'generation' | 'observedGeneration'>;

/** The columns a summary is read from: lists read 22 fields per row instead of 32. */
const SUMMARY_COLUMNS = [
  'workspaces.id',
  'workspaces.team_name',
  'workspaces.name',
  'workspaces.owner_name',
  'workspaces.profile',
  'workspaces.shared',
  'workspaces.desired',
  'workspaces.phase',
  'workspaces.reason',
  'workspaces.cpu_request_milli',
  'workspaces.cpu_limit_milli',
  'workspaces.memory_request_bytes',
  'workspaces.memory_limit_bytes',
  'workspaces.gpu_count',
  'workspaces.gpu_type',
  'workspaces.gpu_pool_name',
  'workspaces.cluster',
  'workspaces.storage_bytes',
  'workspaces.spec',
  'workspaces.created_at',
  'workspaces.updated_at',
  'workspaces.started_at',
  'workspaces.last_activity_at',
] as const;

type SummaryColumn = (typeof SUMMARY_COLUMNS)[number] extends `workspaces.${infer C}` ? C : never;
type SummaryRow = Pick<Selectable<WorkspacesTable>, SummaryColumn>;
type Row = Selectable<WorkspacesTable>;

function toSummary(r: SummaryRow): WorkspaceSummary {
  return {
    id: r.id,
    team: r.team_name,
    name: r.name,
    owner: r.owner_name,
    profile: r.profile,
    shared: r.shared === 1,
    desired: r.desired as DesiredState,
    phase: r.phase as Phase,
    reason: r.reason,
    resources: {
      cpuRequestMilli: Number(r.cpu_request_milli),
      cpuLimitMilli: Number(r.cpu_limit_milli),
      memoryRequestBytes: Number(r.memory_request_bytes),
      memoryLimitBytes: Number(r.memory_limit_bytes),
      gpuCount: Number(r.gpu_count),
      gpuType: r.gpu_type,
      storageBytes: Number(r.storage_bytes),
    },
    gpuPool: r.gpu_pool_name,
    cluster: r.cluster,
    spec: JSON.parse(r.spec) as WorkspaceSettings,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    startedAt: r.started_at === null ? null : Number(r.started_at),
    lastActivityAt: r.last_activity_at === null ? null : Number(r.last_activity_at),
  };
}

/** Maps a full workspace row (as selected by {@link selectWorkspaces}) to a {@link Workspace}. */
export function toWorkspace(r: Row): Workspace {
  return {
    ...toSummary(r),
    teamId: r.team_id,
    ownerId: r.owner_id,
    gpuPoolId: r.gpu_pool_id,
    purge: r.purge === 1,
    generation: Number(r.generation),
    observedGeneration: Number(r.observed_generation),
  };
}

/**
 * Builds a row object from an array row in one object literal, compiled once
 * per column list: how list queries turn array rows (both databases) into
 * the row shape `toSummary` reads, without a property-by-property loop per row.
 */
const rowBuilders = new Map<string, (a: unknown[]) => SummaryRow>();
function rowBuilder(columns: string[]): (a: unknown[]) => SummaryRow {
  const key = columns.join(',');
  let build = rowBuilders.get(key);
  if (!build) {
    // Column names come from our own SQL (Kysely-built, fixed), never from input. A compiled
    // literal took about a fifth less CPU per list on SQLite than building each row key by key.
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    build = new Function('a', `return {${columns.map((c, i) => `${JSON.stringify(c)}: a[${i}]`).join(', ')}};`) as (a: unknown[]) => SummaryRow;
    rowBuilders.set(key, build);
  }
  return build;
}

/** A query for workspace summaries: only the columns lists show. Run it with {@link fetchSummaries}. */
export function selectSummaries(ex: Executor) {
  return ex.selectFrom('workspaces').select(SUMMARY_COLUMNS);
}

/** A query for whole workspace rows; map each with {@link toWorkspace}. */
export function selectWorkspaces(ex: Executor) {
  return ex.selectFrom('workspaces').selectAll('workspaces');
}

/** Runs a summary list query (compiled from {@link selectSummaries}) with array rows. */
export async function fetchSummaries(ctx: StoreContext, q: SqlText): Promise<WorkspaceSummary[]> {
  const { columns, rows } = await ctx.raw(q.sql, q.parameters);
  const build = rowBuilder(columns);
  return rows.map((a) => toSummary(build(a)));
}

/** The workspace with this id, deleted or not, read through `ex` (the database or a transaction). */
export async function workspaceById(ex: Executor, id: string): Promise<Workspace | undefined> {
  const r = await selectWorkspaces(ex).where('workspaces.id', '=', id).executeTakeFirst();
  return r && toWorkspace(r);
}

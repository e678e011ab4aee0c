import { Link } from 'react-router';
import { errorText } from '../../api/client.ts';
import type { GrantView, PoolView, WorkspaceView } from '../../api/types.ts';
import { EmptyState, ErrorNote, Loading, PhaseBadge, QuotaBar, Section, Table, type Column } from '../../components/ui.tsx';
import { plural } from '../../format.ts';

export interface GpusPageViewProps {
  /** undefined while loading */
  pools: PoolView[] | undefined;
  poolsError: unknown;
  /** each pool's grants by pool name: undefined grants while loading */
  grants: Map<string, { grants: GrantView[] | undefined; error: unknown }>;
  /** workspaces holding GPUs now; undefined while loading */
  holders: WorkspaceView[] | undefined;
  /** false when only the first pages of workspaces were looked through */
  holdersComplete: boolean;
  holdersError: unknown;
}

export function GpusPageView({ pools, poolsError, grants, holders, holdersComplete, holdersError }: GpusPageViewProps) {
  const sortedHolders = holders ? [...holders].sort((a, b) => (a.gpuPool ?? '').localeCompare(b.gpuPool ?? '') || `${a.team}/${a.name}`.localeCompare(`${b.team}/${b.name}`)) : undefined;
  return (
    <>
      <Section title="GPU pools">
        <p className="muted admin-intro">
          A pool is a named set of GPUs of one type. Its owning team may use all of it; other teams use it through grants, within their own GPU quota.
        </p>
        <ErrorNote error={poolsError} />
        {pools === undefined && !poolsError ? <Loading label="Loading GPU pools…" /> : null}
        {pools ? (
          <Table
            caption="GPU pools"
            columns={poolColumns(grants)}
            rows={pools}
            rowKey={(p) => p.name}
            empty={
              <EmptyState title="No GPU pools yet">
                Workspaces from GPU profiles need a pool of their GPU type. Add one with <code>POST /api/v1/gpu-pools</code> (name, GPU type, size, and optionally its
                cluster and owning team), then give teams a share with <code>PUT /api/v1/gpu-pools/&lt;pool&gt;/grants/&lt;team&gt;</code>.
              </EmptyState>
            }
          />
        ) : null}
      </Section>

      <Section title="Who holds GPUs">
        <p className="muted admin-intro">Workspaces hold their GPUs from the moment they start until they have stopped.</p>
        <ErrorNote error={holdersError} />
        {sortedHolders === undefined && !holdersError ? <Loading label="Looking for workspaces holding GPUs…" /> : null}
        {sortedHolders ? (
          <Table
            caption="Workspaces holding GPUs"
            columns={HOLDER_COLUMNS}
            rows={sortedHolders}
            rowKey={(ws) => ws.id}
            empty={<EmptyState title="Nobody holds a GPU right now">Every GPU is free: no workspace with a GPU profile is starting or running.</EmptyState>}
          />
        ) : null}
        {holdersComplete ? null : <p className="muted">Showing the first 5,000 workspaces holding GPUs.</p>}
      </Section>
    </>
  );
}

function poolColumns(grants: GpusPageViewProps['grants']): Array<Column<PoolView>> {
  return [
    {
      key: 'pool',
      header: 'Pool',
      cellClassName: 'cell-main',
      cell: (pool) => (
        <>
          <div className="cell-title">{pool.name}</div>
          <div className="cell-sub">cluster {pool.cluster}</div>
        </>
      ),
    },
    { key: 'type', header: 'GPU type', cell: (pool) => <code>{pool.gpuType}</code> },
    { key: 'owner', header: 'Owner', cell: (pool) => (pool.owner ? <Link to={`/teams/${pool.owner}`}>{pool.owner}</Link> : <span className="muted">Platform</span>) },
    {
      key: 'used',
      header: 'In use',
      className: 'admin-col-bar',
      cell: (pool) => <QuotaBar label="In use" used={pool.used} limit={pool.size} usedText={String(pool.used)} limitText={plural(pool.size, 'GPU')} />,
    },
    { key: 'grants', header: 'Grants', cell: (pool) => <PoolGrantsList pool={pool} grants={grants.get(pool.name)} /> },
  ];
}

function PoolGrantsList({ pool, grants }: { pool: PoolView; grants: { grants: GrantView[] | undefined; error: unknown } | undefined }) {
  if (grants?.error) return <span className="admin-error-text">Not loaded: {errorText(grants.error)}</span>;
  if (grants?.grants === undefined) return <span className="muted">Loading…</span>;
  if (grants.grants.length === 0) return <span className="muted">{pool.owner ? 'Only its owner' : 'No team yet'}</span>;
  return (
    <ul className="admin-grants">
      {grants.grants.map((g) => (
        <li key={g.team}>
          <Link to={`/teams/${g.team}`}>{g.team}</Link> <span className="muted">up to {plural(g.limit, 'GPU')}</span>
        </li>
      ))}
    </ul>
  );
}

const HOLDER_COLUMNS: Array<Column<WorkspaceView>> = [
  {
    key: 'workspace',
    header: 'Workspace',
    cellClassName: 'cell-main',
    cell: (ws) => (
      <>
        <Link className="cell-title" to={`/workspaces/${ws.team}/${ws.name}`}>
          {ws.team}/{ws.name}
        </Link>
        <div className="cell-sub">{ws.profile}</div>
      </>
    ),
  },
  { key: 'owner', header: 'Owner', cell: (ws) => ws.owner },
  { key: 'pool', header: 'Pool', cell: (ws) => ws.gpuPool },
  { key: 'gpus', header: 'GPUs', cell: (ws) => (ws.resources.gpu ? `${ws.resources.gpu.count}× ${ws.resources.gpu.type}` : '—') },
  { key: 'state', header: 'State', cell: (ws) => <PhaseBadge phase={ws.phase} desired={ws.desired} /> },
];

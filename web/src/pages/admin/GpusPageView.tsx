import { Link } from 'react-router';
import { errorText } from '../../api/client.ts';
import type { GrantView, PoolView, WorkspaceView } from '../../api/types.ts';
import { EmptyState, ErrorNote, Loading, PhaseBadge, QuotaBar, Section, TableHead } from '../../components/ui.tsx';
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
        {pools && pools.length === 0 ? (
          <EmptyState title="No GPU pools yet">
            Workspaces from GPU profiles need a pool of their GPU type. Add one with <code>POST /api/v1/gpu-pools</code> (name, GPU type, size, and optionally its
            cluster and owning team), then give teams a share with <code>PUT /api/v1/gpu-pools/&lt;pool&gt;/grants/&lt;team&gt;</code>.
          </EmptyState>
        ) : null}
        {pools && pools.length > 0 ? (
          <div className="table-wrap">
            <table role="table" className="table">
              <TableHead columns={['Pool', 'GPU type', 'Owner', { label: 'In use', className: 'admin-col-bar' }, 'Grants']} />
              <tbody role="rowgroup">
                {pools.map((p) => (
                  <PoolRow key={p.name} pool={p} grants={grants.get(p.name)} />
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
      </Section>

      <Section title="Who holds GPUs">
        <p className="muted admin-intro">Workspaces hold their GPUs from the moment they start until they have stopped.</p>
        <ErrorNote error={holdersError} />
        {sortedHolders === undefined && !holdersError ? <Loading label="Looking for workspaces holding GPUs…" /> : null}
        {sortedHolders && sortedHolders.length === 0 ? (
          <EmptyState title="Nobody holds a GPU right now">Every GPU is free: no workspace with a GPU profile is starting or running.</EmptyState>
        ) : null}
        {sortedHolders && sortedHolders.length > 0 ? (
          <div className="table-wrap">
            <table role="table" className="table">
              <TableHead columns={['Workspace', 'Owner', 'Pool', 'GPUs', 'State']} />
              <tbody role="rowgroup">
                {sortedHolders.map((ws) => (
                  <tr role="row" key={ws.id}>
                    <td role="cell" className="cell-main" data-label="Workspace">
                      <Link className="cell-title" to={`/workspaces/${ws.team}/${ws.name}`}>
                        {ws.team}/{ws.name}
                      </Link>
                      <div className="cell-sub">{ws.profile}</div>
                    </td>
                    <td role="cell" data-label="Owner">{ws.owner}</td>
                    <td role="cell" data-label="Pool">{ws.gpuPool}</td>
                    <td role="cell" data-label="GPUs">{ws.resources.gpu ? `${ws.resources.gpu.count}× ${ws.resources.gpu.type}` : '—'}</td>
                    <td role="cell" data-label="State">
                      <PhaseBadge phase={ws.phase} desired={ws.desired} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
        {holdersComplete ? null : <p className="muted">Showing the first 5,000 workspaces holding GPUs.</p>}
      </Section>
    </>
  );
}

function PoolRow({ pool, grants }: { pool: PoolView; grants: { grants: GrantView[] | undefined; error: unknown } | undefined }) {
  return (
    <tr role="row">
      <td role="cell" className="cell-main" data-label="Pool">
        <div className="cell-title">{pool.name}</div>
        <div className="cell-sub">cluster {pool.cluster}</div>
      </td>
      <td role="cell" data-label="GPU type">
        <code>{pool.gpuType}</code>
      </td>
      <td role="cell" data-label="Owner">{pool.owner ? <Link to={`/teams/${pool.owner}`}>{pool.owner}</Link> : <span className="muted">Platform</span>}</td>
      <td role="cell" data-label="In use" className="admin-col-bar">
        <QuotaBar label="In use" used={pool.used} limit={pool.size} usedText={String(pool.used)} limitText={plural(pool.size, 'GPU')} />
      </td>
      <td role="cell" data-label="Grants">
        {grants?.error ? (
          <span className="admin-error-text">Not loaded: {errorText(grants.error)}</span>
        ) : grants?.grants === undefined ? (
          <span className="muted">Loading…</span>
        ) : grants.grants.length === 0 ? (
          <span className="muted">{pool.owner ? 'Only its owner' : 'No team yet'}</span>
        ) : (
          <ul className="admin-grants">
            {grants.grants.map((g) => (
              <li key={g.team}>
                <Link to={`/teams/${g.team}`}>{g.team}</Link> <span className="muted">up to {plural(g.limit, 'GPU')}</span>
              </li>
            ))}
          </ul>
        )}
      </td>
    </tr>
  );
}

import { Link } from 'react-router';
import type { ProfileView } from '../../api/types.ts';
import { EmptyState, ErrorNote, Loading, Section, Table, type Column } from '../../components/ui.tsx';
import { resources } from '../../format.ts';

export interface ProfilesPageViewProps {
  /** undefined while loading */
  profiles: ProfileView[] | undefined;
  error: unknown;
}

const ENVIRONMENTS: Record<ProfileView['environment'], string> = { jupyter: 'Jupyter', shell: 'Shell (SSH)', custom: 'Custom app' };

export function ProfilesPageView({ profiles, error }: ProfilesPageViewProps) {
  return (
    <Section title="Profiles">
      <p className="muted admin-intro">
        Profiles are the kinds of workspace people can launch. They are defined in the <code>profiles</code> list of the server's config file and change when the
        server restarts with a new one; this page shows them as admission sees them.
      </p>
      <ErrorNote error={error} />
      {profiles === undefined && !error ? <Loading label="Loading profiles…" /> : null}
      {profiles ? (
        <Table
          caption="Profiles"
          columns={COLUMNS}
          rows={profiles}
          rowKey={(p) => p.name}
          empty={
            <EmptyState title="No profiles defined">
              Nobody can launch a workspace until the server's config file lists at least one profile under <code>profiles</code>.
            </EmptyState>
          }
        />
      ) : null}
    </Section>
  );
}

const COLUMNS: Array<Column<ProfileView>> = [
  {
    key: 'profile',
    header: 'Profile',
    cellClassName: 'cell-main',
    cell: (p) => (
      <>
        <div className="cell-title">
          {p.displayName} <code className="admin-name">{p.name}</code>
        </div>
        {p.description ? <div className="cell-sub admin-description">{p.description}</div> : null}
      </>
    ),
  },
  { key: 'environment', header: 'Environment', cell: (p) => ENVIRONMENTS[p.environment] },
  {
    key: 'resources',
    header: 'Resources',
    cell: (p) => (
      <div className="admin-stack">
        <div>{resources(p.resources)}</div>
        <div className="cell-sub">
          guaranteed {p.resources.cpu.guarantee} CPU · {p.resources.memory.guarantee}
        </div>
      </div>
    ),
  },
  { key: 'tier', header: 'Tier', cell: (p) => <span className={`badge ${p.tier === 'sandboxed' ? 'badge-ok' : 'badge-idle'}`}>{p.tier}</span> },
  { key: 'egress', header: 'Egress', cell: (p) => (p.egress === 'none' ? <span className="muted">None</span> : p.egress === 'public' ? 'Public internet' : `${p.egress.public ? 'Public internet and ' : ''}${p.egress.allow.join(', ')}`) },
  { key: 'idle', header: 'Idle timeout', cell: (p) => (p.idleTimeout === 'never' || p.idleTimeout === '0' ? <span className="muted">never</span> : p.idleTimeout) },
  {
    key: 'teams',
    header: 'Teams',
    cell: (p) =>
      p.teams === null ? (
        <span className="muted admin-nowrap">All teams</span>
      ) : p.teams.length === 0 ? (
        <span className="muted">No team</span>
      ) : (
        <span className="admin-links">
          {p.teams.map((t, i) => (
            <span key={t}>
              {i > 0 ? ', ' : ''}
              <Link to={`/teams/${t}`}>{t}</Link>
            </span>
          ))}
        </span>
      ),
  },
];

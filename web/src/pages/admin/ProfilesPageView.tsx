import { Link } from 'react-router';
import type { ProfileView } from '../../api/types.ts';
import { EmptyState, ErrorNote, Loading, Section, TableHead } from '../../components/ui.tsx';
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
      {profiles && profiles.length === 0 ? (
        <EmptyState title="No profiles defined">
          Nobody can launch a workspace until the server's config file lists at least one profile under <code>profiles</code>.
        </EmptyState>
      ) : null}
      {profiles && profiles.length > 0 ? (
        <div className="table-wrap">
          <table role="table" className="table">
            <TableHead columns={['Profile', 'Environment', 'Resources', 'Tier', 'Egress', 'Idle timeout', 'Teams']} />
            <tbody role="rowgroup">
              {profiles.map((p) => (
                <ProfileRow key={p.name} profile={p} />
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </Section>
  );
}

function ProfileRow({ profile: p }: { profile: ProfileView }) {
  return (
    <tr role="row">
      <td role="cell" className="cell-main" data-label="Profile">
        <div className="cell-title">
          {p.displayName} <code className="admin-name">{p.name}</code>
        </div>
        {p.description ? <div className="cell-sub admin-description">{p.description}</div> : null}
      </td>
      <td role="cell" data-label="Environment">{ENVIRONMENTS[p.environment]}</td>
      <td role="cell" data-label="Resources">
        <div className="admin-stack">
          <div>{resources(p.resources)}</div>
          <div className="cell-sub">
            guaranteed {p.resources.cpu.guarantee} CPU · {p.resources.memory.guarantee}
          </div>
        </div>
      </td>
      <td role="cell" data-label="Tier">
        <span className={`badge ${p.tier === 'sandboxed' ? 'badge-ok' : 'badge-idle'}`}>{p.tier}</span>
      </td>
      <td role="cell" data-label="Egress">{p.egress === 'public' ? 'Public internet' : <span className="muted">None</span>}</td>
      <td role="cell" data-label="Idle timeout">{p.idleTimeout === 'never' || p.idleTimeout === '0' ? <span className="muted">never</span> : p.idleTimeout}</td>
      <td role="cell" data-label="Teams">
        {p.teams === null ? (
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
        )}
      </td>
    </tr>
  );
}

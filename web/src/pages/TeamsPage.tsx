import { useQueries } from '@tanstack/react-query';
import { Link } from 'react-router';
import { useSession } from '../api/session.tsx';
import type { MeView, UsageView } from '../api/types.ts';
import { EmptyState, Loaded, Notice, PageHeader, Section } from '../components/ui.tsx';
import { QuotaBars } from './QuotaBars.tsx';
import './team.css';

export interface TeamSummary {
  name: string;
  role: MeView['teams'][number]['role'];
  personal: boolean;
  usage: { data: UsageView | undefined; error: unknown; pending: boolean };
}

/** My teams, each with what its workspaces use of its quota (kept live by the event stream). */
export function TeamsPage() {
  const { me, api } = useSession();
  const usages = useQueries({
    queries: me.teams.map((t) => ({ queryKey: ['usage', t.name], queryFn: () => api.usage(t.name) })),
  });
  const teams = me.teams.map((t, i) => {
    const q = usages[i];
    return { ...t, usage: { data: q?.data, error: q?.error ?? null, pending: q?.isPending ?? true } };
  });
  return <TeamsPageView teams={teams} admin={me.user.admin} />;
}

const byKind = (a: TeamSummary, b: TeamSummary) => Number(b.personal) - Number(a.personal) || a.name.localeCompare(b.name);

export function TeamsPageView({ teams, admin }: { teams: TeamSummary[]; admin: boolean }) {
  return (
    <>
      <PageHeader title="Teams" subtitle="The teams you belong to, your role in each, and how much of its quota each team is using." />
      {admin ? (
        <Notice>
          As a platform admin you can see and manage every team, including ones you are not in, under <Link to="/admin/teams">Admin → Teams</Link>.
        </Notice>
      ) : null}
      {teams.length === 0 ? (
        <Section title="Your teams">
          <EmptyState title="You are not in any team yet" action={<Link to="/">Go to your workspaces</Link>}>
            A team owner can add you to their team; an admin can create a new shared team.
          </EmptyState>
        </Section>
      ) : (
        <ul className="team-cards" aria-label="Your teams">
          {[...teams].sort(byKind).map((t) => (
            <li key={t.name} className="card team-card">
              <div className="team-card-head">
                <h2>
                  <Link to={`/teams/${encodeURIComponent(t.name)}`}>{t.name}</Link>
                </h2>
                <div className="team-tags">
                  <span className="badge badge-idle">{t.personal ? 'Personal team' : 'Shared team'}</span>
                  <span className="badge badge-idle">Your role: {t.role}</span>
                </div>
              </div>
              <div className="quota-compact">
                <Loaded value={t.usage} loading="Loading usage…" failed="Usage is unavailable.">
                  {(data) => (
                    <QuotaBars usage={data} />
                  )}
                </Loaded>
              </div>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

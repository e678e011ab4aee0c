import { Link } from 'react-router';
import { useProgress } from '../api/events.tsx';
import type { WorkspaceView } from '../api/types.ts';
import { Button, EmptyState, ErrorNote, Loading, Notice, PageHeader, PhaseBadge, Table, type Column } from '../components/ui.tsx';
import { ago, resources } from '../format.ts';
import { isStarting, WorkspaceActions } from './WorkspaceActions.tsx';

export interface WorkspacesPageViewProps {
  workspaces: WorkspaceView[] | undefined;
  /** more than one page exists (shown as a hint to use the CLI or team pages) */
  more: boolean;
  error: unknown;
  canLaunch: boolean;
  /** a workspace just launched from here, shown with a note until it runs */
  launched: WorkspaceView | null;
  /** the signed-in username */
  me: string;
  onLaunch: () => void;
}

export function WorkspacesPageView({ workspaces, more, error, canLaunch, launched, me, onLaunch }: WorkspacesPageViewProps) {
  const launchButton = canLaunch ? (
    <Button variant="primary" onClick={onLaunch}>
      New workspace
    </Button>
  ) : null;
  return (
    <>
      <PageHeader title="Workspaces" subtitle="Your workspaces and your teams' shared ones." actions={launchButton} />
      {launched && workspaces?.some((w) => w.id === launched.id && isStarting(w)) ? <LaunchNotice ws={launched} /> : null}
      <ErrorNote error={error} />
      {workspaces === undefined && !error ? <Loading /> : null}
      {workspaces && workspaces.length === 0 ? (
        <div className="card">
          <EmptyState title="No workspaces yet" action={launchButton}>
            {canLaunch
              ? 'A workspace is your own environment with a persistent home: launch one from a profile, then open it in the browser.'
              : 'You can see the workspaces of your teams here. You are a viewer in every team, so you cannot launch one: ask a team owner for the editor role.'}
          </EmptyState>
        </div>
      ) : null}
      {workspaces && workspaces.length > 0 ? (
        <section className="card" aria-label="Workspaces">
          <Table
            caption="Workspaces"
            columns={workspaceColumns(me)}
            rows={workspaces}
            rowKey={(ws) => ws.id}
            actions={(ws) => <WorkspaceActions ws={ws} compact />}
            actionsBoxed
          />
          {more ? <p className="muted">Showing the first 200. Team pages list each team's workspaces.</p> : null}
        </section>
      ) : null}
    </>
  );
}

/** The one announced status on the page: what the workspace just launched from here is doing. */
function LaunchNotice({ ws }: { ws: WorkspaceView }) {
  const progress = useProgress(ws.team, ws.name);
  return (
    <Notice tone="success">
      {ws.team}/{ws.name} is starting{progress ? `: ${progress.message}` : ''}. <strong>Open</strong> appears in its row when it is ready.
    </Notice>
  );
}

function workspaceColumns(me: string): Array<Column<WorkspaceView>> {
  return [
    {
      key: 'workspace',
      header: 'Workspace',
      cellClassName: 'cell-main',
      cell: (ws) => (
        <>
          <Link className="cell-title" to={`/workspaces/${ws.team}/${ws.name}`}>
            {ws.name}
          </Link>
          <div className="cell-sub">
            team {ws.team}
            {ws.owner !== me ? ` · owner ${ws.owner}` : ''}
            {ws.shared ? ' · shared' : ''}
          </div>
        </>
      ),
    },
    { key: 'state', header: 'State', cell: (ws) => <WorkspaceState ws={ws} /> },
    {
      key: 'profile',
      header: 'Profile and resources',
      label: 'Profile',
      cell: (ws) => (
        <div>
          {ws.profile}
          <div className="cell-sub">{resources(ws.resources)}</div>
        </div>
      ),
    },
    { key: 'created', header: 'Created', cell: (ws) => ago(ws.createdAt) },
    { key: 'active', header: 'Last active', cell: (ws) => ago(ws.lastActivityAt) },
  ];
}

/** The workspace's phase, with what it is doing while it starts and why it failed. */
function WorkspaceState({ ws }: { ws: WorkspaceView }) {
  const progress = useProgress(ws.team, ws.name);
  const starting = isStarting(ws);
  return (
    <div className="state-cell">
      <PhaseBadge phase={ws.phase} desired={ws.desired} />
      {starting && progress ? <span className="progress-msg">{progress.message}</span> : null}
      {ws.phase === 'failed' && ws.reason ? <span className="failure">{ws.reason}</span> : null}
    </div>
  );
}

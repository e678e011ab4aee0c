import { useQuery } from '@tanstack/react-query';
import { logLines, parseLogLine, safeTerminalText } from '../../../src/domain/index.ts';
import { useNavigate, useParams } from 'react-router';
import { ApiError } from '../api/client.ts';
import { useProgress } from '../api/events.tsx';
import { useSession } from '../api/session.tsx';
import type { WorkspaceView } from '../api/types.ts';
import { Button, EmptyState, ErrorNote, Loading, PageHeader, PhaseBadge, Section } from '../components/ui.tsx';
import { ago, dateTime, resources } from '../format.ts';
import { ConnectPanel } from './ConnectPanel.tsx';
import { isStarting, WorkspaceActions } from './WorkspaceActions.tsx';

/** One workspace: state and live progress, how to connect, details, the app's output. */
export function WorkspacePage() {
  const { team = '', ws: name = '' } = useParams();
  const { api, canOnWorkspace } = useSession();
  const navigate = useNavigate();
  const ws = useQuery({ queryKey: ['workspace', team, name], queryFn: () => api.workspace(team, name) });
  if (ws.error instanceof ApiError && ws.error.status === 404) {
    return (
      <>
        <PageHeader title={`${team}/${name}`} />
        <div className="card">
          <EmptyState title="No such workspace">It does not exist, or it is in a team you do not belong to.</EmptyState>
        </div>
      </>
    );
  }
  if (!ws.data) return ws.error ? <ErrorNote error={ws.error} /> : <Loading />;
  return (
    <WorkspacePageView
      ws={ws.data}
      canConnect={canOnWorkspace('workspace.connect', ws.data)}
      canReadLogs={canOnWorkspace('workspace.operate', ws.data)}
      onDeleted={() => navigate('/', { replace: true })}
    />
  );
}

export function WorkspacePageView({ ws, canConnect, canReadLogs, onDeleted }: { ws: WorkspaceView; canConnect: boolean; canReadLogs: boolean; onDeleted: () => void }) {
  const progress = useProgress(ws.team, ws.name);
  return (
    <>
      <PageHeader
        title={ws.name}
        subtitle={
          <>
            Team {ws.team} · owner {ws.owner}
            {ws.shared ? ' · shared with the team' : ''}
          </>
        }
        actions={<WorkspaceActions ws={ws} onDeleted={onDeleted} />}
      />
      <div className="status-line card">
        <PhaseBadge phase={ws.phase} desired={ws.desired} />
        <span aria-live="polite">
          {isStarting(ws) && progress ? progress.message : ws.phase === 'failed' ? ws.reason : stateText(ws)}
        </span>
      </div>
      <div className="grid-2">
        <ConnectPanel ws={ws} canConnect={canConnect} />
        <Section title="Details">
          <dl className="details">
            <dt>Profile</dt>
            <dd>{ws.profile}</dd>
            <dt>Resources</dt>
            <dd>{resources(ws.resources)}</dd>
            <dt>Guaranteed</dt>
            <dd>
              {ws.resources.cpu.guarantee} CPU · {ws.resources.memory.guarantee} memory
            </dd>
            <dt>Environment</dt>
            <dd>{ws.environment}</dd>
            <dt>Isolation</dt>
            <dd>{ws.tier === 'sandboxed' ? 'sandboxed (stronger isolation)' : 'standard'}</dd>
            <dt>Image</dt>
            <dd>{ws.image ? <code>{ws.image}</code> : 'host /usr'}</dd>
            <dt>Volumes</dt>
            <dd>
              {ws.volumes.length === 0 ? (
                <span className="muted">none</span>
              ) : (
                <ul className="details-list">
                  {ws.volumes.map((v) => (
                    <li key={v.path}>
                      <code>{v.volume}</code> at <code>{v.path}</code>
                    </li>
                  ))}
                </ul>
              )}
            </dd>
            {ws.identity ? (
              <>
                <dt>Workload identity</dt>
                <dd>
                  <code>{ws.identity.subject}</code> for {ws.identity.audiences.join(', ')}
                  <br />
                  <span className="muted">
                    {ws.identity.tokenExpiresAt ? `token in ${ws.identity.tokenFile}, replaced before ${dateTime(ws.identity.tokenExpiresAt)}` : 'no token while it does not run'}
                  </span>
                </dd>
              </>
            ) : null}
            {ws.gpuPool ? (
              <>
                <dt>GPU pool</dt>
                <dd>{ws.gpuPool}</dd>
              </>
            ) : null}
            <dt>Created</dt>
            <dd>{dateTime(ws.createdAt)}</dd>
            <dt>Started</dt>
            <dd>{ws.startedAt ? dateTime(ws.startedAt) : '—'}</dd>
            <dt>Last active</dt>
            <dd>{ago(ws.lastActivityAt)}</dd>
          </dl>
        </Section>
      </div>
      {canReadLogs ? <Logs ws={ws} /> : null}
    </>
  );
}

function stateText(ws: WorkspaceView): string {
  if (ws.desired === 'deleted') return 'Being deleted.';
  if (ws.phase === 'unknown') return `Its cluster cannot be reached${ws.reason ? `: ${ws.reason}` : ''}. It is shown again as it is once the cluster answers.`;
  if (ws.phase === 'running') return `Running since ${ago(ws.startedAt)}.`;
  if (ws.desired === 'running') return 'Starting.';
  if (ws.phase === 'stopping') return 'Stopping. The home is kept.';
  return 'Stopped. The home is kept; start it to carry on.';
}

function Logs({ ws }: { ws: WorkspaceView }) {
  const { api } = useSession();
  const logs = useQuery({ queryKey: ['logs', ws.team, ws.name], queryFn: () => api.logs(ws.team, ws.name), staleTime: 0 });
  return (
    <Section
      title="Output"
      actions={
        <Button className="btn-small" busy={logs.isFetching} onClick={() => void logs.refetch()}>
          Refresh
        </Button>
      }
    >
      <ErrorNote error={logs.error} />
      {logs.data !== undefined ? (
        logs.data.trim() === '' ? (
          <p className="muted">Nothing yet: the app's output appears here once the workspace has run.</p>
        ) : (
          <LogText text={logs.data} />
        )
      ) : logs.isPending ? (
        <Loading />
      ) : null}
    </Section>
  );
}

/**
 * A workspace's log: the platform's own lines (marked in the log, see the
 * domain's logs module) set apart and without their marker byte, the app's
 * text without terminal escape sequences, which a browser would show as
 * clutter. React escapes what is left, so no app text is ever markup.
 */
export function LogText({ text }: { text: string }) {
  return (
    <pre className="logs" tabIndex={0} aria-label="Last lines of the app's output">
      {logLines(text).map((line, i) => {
        const parsed = parseLogLine(line);
        return parsed.source === 'platform' ? (
          <span key={i} className="log-platform">
            [atrium {parsed.time}] {safeTerminalText(parsed.message)}
            {'\n'}
          </span>
        ) : (
          <span key={i}>
            {safeTerminalText(parsed.text)}
            {'\n'}
          </span>
        );
      })}
    </pre>
  );
}

import type { WorkspaceView } from '../api/types.ts';
import { CopyField, Section } from '../components/ui.tsx';

/** One way into a workspace. */
export interface WayIn {
  id: string;
  title: string;
  description: string;
  /** something to copy: a URL, a command, a host name */
  value: string;
  valueLabel: string;
  /** a link that goes there now, when the way in is a page */
  open?: { href: string; label: string };
}

/**
 * Every way into a workspace that exists. The SSH gateway adds its own
 * entries here (the `ssh` command, the VS Code Remote-SSH host written by
 * `atrium config-ssh`) and nothing else in the portal changes.
 */
export function waysIn(ws: WorkspaceView, origin: string): WayIn[] {
  return [
    {
      id: 'browser',
      title: 'Browser',
      description:
        ws.environment === 'jupyter'
          ? 'Jupyter, on the workspace’s own address. You are signed in to it for this browser session only.'
          : 'The workspace’s web app, on its own address. You are signed in to it for this browser session only.',
      value: `${origin}${ws.url}`,
      valueLabel: 'browser address',
      open: { href: ws.url, label: 'Open in a new tab' },
    },
  ];
}

export function ConnectPanel({ ws, canConnect }: { ws: WorkspaceView; canConnect: boolean }) {
  if (!canConnect) {
    return (
      <Section title="Connect">
        <p className="muted">
          Only {ws.owner}
          {ws.shared ? ` and the editors of team ${ws.team}` : ''} can connect: connecting runs code as the workspace’s user.
        </p>
      </Section>
    );
  }
  const running = ws.phase === 'running';
  return (
    <Section title="Connect">
      {!running ? <p className="muted">Start the workspace to connect; these stay the same across restarts.</p> : null}
      <ul className="ways">
        {waysIn(ws, window.location.origin).map((w) => (
          <li key={w.id}>
            <div className="way-head">
              <h3>{w.title}</h3>
              {w.open && running ? (
                <a className="btn btn-primary btn-small" href={w.open.href} target="_blank" rel="noopener">
                  {w.open.label}
                </a>
              ) : null}
            </div>
            <p className="muted">{w.description}</p>
            <CopyField value={w.value} label={w.valueLabel} />
          </li>
        ))}
      </ul>
    </Section>
  );
}

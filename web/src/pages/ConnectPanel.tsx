import { useQuery } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import { Link } from 'react-router';
import { useSession } from '../api/session.tsx';
import type { SshAccessView, WorkspaceView } from '../api/types.ts';
import { CopyField, ErrorNote, Loading, Notice, Section } from '../components/ui.tsx';
import { isStarting } from './WorkspaceActions.tsx';

/** Something to copy: a URL, a command, a host name. */
export interface ToCopy {
  value: string;
  /** what it is, for the copy button's name ("Copy …") */
  label: string;
  /** what to do with it, when a way takes more than one step */
  step?: string;
}

/** One way into a workspace. */
export interface WayIn {
  id: string;
  title: string;
  description: ReactNode;
  /** what to copy, in the order it is used */
  copy: ToCopy[];
  /** a link that goes there now; `whenRunning`: only while the workspace runs */
  open?: { href: string; label: string; newTab: boolean; whenRunning: boolean };
  /** a host key to compare with what ssh shows */
  hostKey?: { fingerprint: string; text: string };
}

/** Where the settings page lists my SSH keys (its section's heading id). */
export const SSH_KEYS_HREF = '/settings#ssh-keys';

/** The ssh command for the gateway: the workspace as the user name, `-p` only when the port is not SSH's own. */
export function gatewayCommand(gateway: NonNullable<SshAccessView['gateway']>, user: string): string {
  return `ssh ${gateway.port === 22 ? '' : `-p ${gateway.port} `}${user}@${gateway.host}`;
}

/** The VS Code link that opens a workspace's home over Remote-SSH, through the host entry `atrium config-ssh` writes. */
export function vscodeHref(alias: string): string {
  return `vscode://vscode-remote/ssh-remote+${alias}/home/jovyan`;
}

/**
 * Every way into a workspace that exists: the browser always, and once the
 * person's SSH access has loaded (`GET /api/v1/me/ssh`) the SSH gateway (when
 * it runs), the Atrium CLI's tunnel, the host entries `atrium config-ssh`
 * writes, and VS Code through them.
 */
export function waysIn(ws: WorkspaceView, origin: string, ssh?: SshAccessView): WayIn[] {
  const ways: WayIn[] = [
    {
      id: 'browser',
      title: 'Browser',
      description:
        ws.environment === 'jupyter'
          ? 'Jupyter, on the workspace’s own address. You are signed in to it for this browser session only.'
          : 'The workspace’s web app, on its own address. You are signed in to it for this browser session only.',
      copy: [{ value: `${origin}${ws.url}`, label: 'browser address' }],
      open: { href: ws.url, label: 'Open in a new tab', newTab: true, whenRunning: true },
    },
  ];
  if (!ssh) return ways;
  // the API's names for this workspace; the same rule (its documented form) when the list predates the workspace
  const entry = ssh.workspaces.find((w) => w.team === ws.team && w.name === ws.name);
  const alias = entry?.alias ?? `atrium.${ws.team}.${ws.name}`;
  const gatewayUser = entry?.gatewayUser ?? `${ws.team}.${ws.name}`;
  const workspaceKey = entry?.fingerprint ? { fingerprint: entry.fingerprint, text: 'The workspace’s own host key, which the CLI checks for you:' } : undefined;
  if (ssh.gateway) {
    ways.push({
      id: 'ssh',
      title: 'SSH',
      description: 'Any SSH client, through Atrium’s SSH gateway, signed in with a key you added. The user name says which workspace.',
      copy: [{ value: gatewayCommand(ssh.gateway, gatewayUser), label: 'ssh command' }],
      hostKey: { fingerprint: ssh.gateway.fingerprint, text: 'The first time, ssh asks you to confirm the gateway’s host key. Go on only if it shows this fingerprint:' },
    });
  }
  ways.push(
    {
      id: 'cli',
      title: 'Atrium CLI',
      description: (
        <>
          A shell through Atrium’s own web address, so no other port needs to be open, with the <code>atrium</code> command signed in on your computer (
          <code>atrium login</code>).
        </>
      ),
      copy: [{ value: `atrium ssh ${ws.team}/${ws.name}`, label: 'atrium ssh command' }],
      ...(workspaceKey ? { hostKey: workspaceKey } : {}),
    },
    {
      id: 'ssh-config',
      title: 'SSH config',
      description: (
        <>
          <code>atrium config-ssh</code> writes a <code>Host</code> entry for each of your workspaces into <code>~/.ssh/config</code>, through the same tunnel as
          the CLI. Then <code>ssh</code>, <code>scp</code>, <code>rsync</code> and VS Code’s Remote-SSH host list know them.
        </>
      ),
      copy: [
        { value: 'atrium config-ssh', label: 'config-ssh command', step: 'Once on each computer, and again after you create workspaces:' },
        { value: `ssh ${alias}`, label: `ssh command for ${alias}`, step: 'Then, whenever you connect:' },
      ],
    },
    {
      id: 'vscode',
      title: 'VS Code',
      description: (
        <>
          Opens the workspace’s home with the Remote-SSH extension, through the host <code>atrium config-ssh</code> writes: run it once on this computer first.
        </>
      ),
      copy: [{ value: alias, label: 'Remote-SSH host' }],
      open: { href: vscodeHref(alias), label: 'Open in VS Code', newTab: false, whenRunning: false },
    },
  );
  return ways;
}

export function ConnectPanel({ ws, canConnect }: { ws: WorkspaceView; canConnect: boolean }) {
  const { api } = useSession();
  const ssh = useQuery({ queryKey: ['ssh'], queryFn: api.sshAccess, enabled: canConnect });
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
      {!running ? (
        <p className="muted">
          {isStarting(ws)
            ? 'The workspace is starting: the browser way opens once it runs, and an SSH connection waits for it.'
            : 'Start the workspace to open it in the browser; connecting over SSH starts it for you if you may start it.'}{' '}
          These stay the same across restarts.
        </p>
      ) : null}
      {ssh.data?.keys === 0 ? (
        <Notice tone="warning">
          You have no SSH key yet: SSH, the Atrium CLI and VS Code need one to sign you in. <Link to={SSH_KEYS_HREF}>Add an SSH key to connect over SSH</Link>
        </Notice>
      ) : null}
      <ul className="ways">
        {waysIn(ws, window.location.origin, ssh.data).map((w) => (
          <li key={w.id}>
            <div className="way-head">
              <h3>{w.title}</h3>
              {w.open && (running || !w.open.whenRunning) ? (
                <a
                  className={`btn btn-small ${w.open.newTab ? 'btn-primary' : 'btn-secondary'}`}
                  href={w.open.href}
                  {...(w.open.newTab ? { target: '_blank', rel: 'noopener' } : {})}
                >
                  {w.open.label}
                </a>
              ) : null}
            </div>
            <p className="muted">{w.description}</p>
            {w.copy.length === 1 ? (
              <CopyField value={w.copy[0]!.value} label={w.copy[0]!.label} />
            ) : (
              <ol className="way-steps">
                {w.copy.map((c) => (
                  <li key={c.label}>
                    {c.step ? <p>{c.step}</p> : null}
                    <CopyField value={c.value} label={c.label} />
                  </li>
                ))}
              </ol>
            )}
            {w.hostKey ? (
              <p className="way-hostkey">
                {w.hostKey.text} <code className="fingerprint">{w.hostKey.fingerprint}</code>
              </p>
            ) : null}
          </li>
        ))}
      </ul>
      {ssh.isPending ? <Loading label="Loading the SSH ways in…" /> : null}
      {ssh.data ? null : <ErrorNote error={ssh.error} title="Atrium could not load how to connect over SSH; the browser works without it." />}
    </Section>
  );
}

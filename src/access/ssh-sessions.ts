import { TooMany } from '../domain/index.js';
import type { Authenticated } from '../identity/index.js';
import type { Store, Workspace } from '../store/index.js';
import type { Activity } from './activity.js';

/** How a session reached the workspace. */
export type SshPath = 'gateway' | 'tunnel';

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** SSH metrics in the Prometheus text format, appended to the proxy's at /metrics. */
export function createSshMetrics() {
  const open = new Map<SshPath, number>();
  const opened = new Map<SshPath, number>();
  const refusals = new Map<string, number>();
  const bytes = { received: new Map<SshPath, number>(), sent: new Map<SshPath, number>() };
  const add = <K>(m: Map<K, number>, k: K, n: number) => m.set(k, (m.get(k) ?? 0) + n);
  return {
    opened(path: SshPath): void {
      add(open, path, 1);
      add(opened, path, 1);
    },
    closed(path: SshPath, received: number, sent: number): void {
      add(open, path, -1);
      add(bytes.received, path, received);
      add(bytes.sent, path, sent);
    },
    refused(path: SshPath, reason: string): void {
      add(refusals, `${path}|${reason}`, 1);
    },
    render(): string {
      const paths: SshPath[] = ['gateway', 'tunnel'];
      const out = [
        '# HELP atrium_ssh_sessions_open SSH connections to workspaces open now, by path (gateway or tunnel).',
        '# TYPE atrium_ssh_sessions_open gauge',
        ...paths.map((p) => `atrium_ssh_sessions_open{path="${p}"} ${open.get(p) ?? 0}`),
        '# HELP atrium_ssh_sessions_total SSH connections to workspaces opened, by path.',
        '# TYPE atrium_ssh_sessions_total counter',
        ...paths.map((p) => `atrium_ssh_sessions_total{path="${p}"} ${opened.get(p) ?? 0}`),
        '# HELP atrium_ssh_received_bytes_total Bytes from people to workspaces over SSH (closed sessions; through the gateway, the bytes of the channels).',
        '# TYPE atrium_ssh_received_bytes_total counter',
        ...paths.map((p) => `atrium_ssh_received_bytes_total{path="${p}"} ${bytes.received.get(p) ?? 0}`),
        '# HELP atrium_ssh_sent_bytes_total Bytes from workspaces to people over SSH (closed sessions).',
        '# TYPE atrium_ssh_sent_bytes_total counter',
        ...paths.map((p) => `atrium_ssh_sent_bytes_total{path="${p}"} ${bytes.sent.get(p) ?? 0}`),
        '# HELP atrium_ssh_refusals_total SSH connections refused, by path and reason.',
        '# TYPE atrium_ssh_refusals_total counter',
        ...[...refusals].sort().map(([k, n]) => {
          const [path, reason] = k.split('|');
          return `atrium_ssh_refusals_total{path="${path}",reason="${escapeLabel(reason!)}"} ${n}`;
        }),
      ];
      return `${out.join('\n')}\n`;
    },
  };
}

export type SshMetrics = ReturnType<typeof createSshMetrics>;

/** One open SSH session; `end` records it once, with what it carried. */
export interface SshSession {
  end(received: number, sent: number, why?: string): void;
}

/** How an open connection is looked at again when access changes, and ended when it no longer holds. */
export interface SessionControl {
  end(): void;
  stillAllowed(): Promise<boolean>;
}

/**
 * SSH sessions through either path: the cap per person, activity for the
 * idle culler (an open session keeps its workspace active), metrics, and an
 * audit row for every start and end, allowed or refused.
 */
export function createSshSessions(opts: {
  store: Store;
  activity: Pick<Activity, 'socketOpened' | 'socketClosed'>;
  metrics: SshMetrics;
  maxPerUser: number;
  log: { error(obj: unknown, msg?: string): void };
}) {
  const perUser = new Map<string, number>();
  const live = new Set<SessionControl>();
  let rechecking: Promise<void> | undefined;
  let again = false;
  const audit = (row: Parameters<Store['audit']['record']>[0]) =>
    void opts.store.audit.record(row).catch((err: unknown) => opts.log.error({ err }, 'writing an SSH audit row failed'));

  return {
    /** Opens a session for `auth` in `ws`, or throws TooMany past the person's cap. */
    metrics: opts.metrics,

    /**
     * Looks at every open connection again (access changed somewhere: a key
     * removed, a membership ended, an account disabled, sharing turned off)
     * and ends those whose person may no longer enter their workspace.
     */
    recheck(): Promise<void> {
      if (rechecking) {
        again = true;
        return rechecking;
      }
      rechecking = (async () => {
        do {
          again = false;
          for (const c of [...live]) {
            const ok = await c.stillAllowed().catch((err: unknown) => {
              opts.log.error({ err }, 'rechecking an SSH session failed');
              return false;
            });
            if (!ok) c.end();
          }
        } while (again);
      })().finally(() => {
        // after the assignment above, even when nothing was awaited
        rechecking = undefined;
      });
      return rechecking;
    },

    open(path: SshPath, auth: Authenticated, ws: Workspace, ip: string, control: SessionControl): SshSession {
      const n = perUser.get(auth.user.id) ?? 0;
      if (n >= opts.maxPerUser) {
        opts.metrics.refused(path, 'too_many_connections');
        audit({ actorId: auth.user.id, actor: auth.user.username, action: 'ssh.session', target: `${ws.team}/${ws.name}`, result: 'too_many_connections', status: 429, ip, details: { path, open: n, limit: opts.maxPerUser } });
        throw new TooMany('too_many_connections', `you have ${n} SSH sessions open, the most allowed; close some first`, { open: n, limit: opts.maxPerUser });
      }
      perUser.set(auth.user.id, n + 1);
      live.add(control);
      opts.metrics.opened(path);
      opts.activity.socketOpened(ws.id);
      const started = Date.now();
      audit({ actorId: auth.user.id, actor: auth.user.username, action: 'ssh.session', target: `${ws.team}/${ws.name}`, result: 'ok', status: 200, ip, details: { path, event: 'start' } });
      let ended = false;
      return {
        end(received, sent, why) {
          if (ended) return;
          ended = true;
          live.delete(control);
          const left = (perUser.get(auth.user.id) ?? 1) - 1;
          if (left <= 0) perUser.delete(auth.user.id);
          else perUser.set(auth.user.id, left);
          opts.metrics.closed(path, received, sent);
          opts.activity.socketClosed(ws.id);
          audit({
            actorId: auth.user.id,
            actor: auth.user.username,
            action: 'ssh.session',
            target: `${ws.team}/${ws.name}`,
            result: 'ok',
            status: 200,
            ip,
            details: { path, event: 'end', seconds: Math.round((Date.now() - started) / 1000), received, sent, ...(why ? { why } : {}) },
          });
        },
      };
    },

    /** Records a refused connection: who (when known), what they asked for, and why (for admins; the person is told less). */
    refused(path: SshPath, r: { user?: { id: string; username: string } | undefined; target: string; reason: string; status: number; ip: string; details?: Record<string, unknown> }): void {
      opts.metrics.refused(path, r.reason);
      audit({ actorId: r.user?.id ?? null, actor: r.user?.username ?? 'anonymous', action: 'ssh.session', target: r.target, result: r.reason, status: r.status, ip: r.ip, details: { path, ...(r.details ?? {}) } });
    },
  };
}

export type SshSessions = ReturnType<typeof createSshSessions>;

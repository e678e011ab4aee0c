import { setTimeout as sleep } from 'node:timers/promises';
import type { Duplex } from 'node:stream';
import type { Endpoint, Runtime } from '../runtime/index.js';
import type { Workspace } from '../store/index.js';

/** How long one probe waits for its answer before it is tried again. */
const PROBE_WAIT_MS = 10_000;

/** What one probe saw: the app answered, the sandbox is there but the app not yet, or nothing listens (the sandbox is gone). */
type Probe = 'ready' | 'waiting' | 'gone';

/** One probe: an HTTP status line from the app, or the SSH banner from sshd. */
async function probe(endpoint: Endpoint, ws: Workspace): Promise<Probe> {
  const kind = ws.spec.environment.kind;
  let socket: Duplex;
  try {
    socket = await endpoint.connect();
  } catch {
    // the sandbox's PID 1 holds the listening socket: refused means it has exited
    return 'gone';
  }
  return new Promise((resolve) => {
    let data = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok ? 'ready' : 'waiting');
    };
    // a local sandbox's agent holds the connection until the app accepts it: one probe can wait out most of a start
    const timer = setTimeout(() => done(false), PROBE_WAIT_MS);
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
      const ok = kind === 'shell' ? data.startsWith('SSH-2.0-') : /^HTTP\/1\.[01] \d{3} /.test(data);
      if (ok || data.length > 64 || data.includes('\n')) {
        clearTimeout(timer);
        done(ok);
      }
    });
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
    if (kind !== 'shell') socket.write(`GET ${ws.spec.environment.kind === 'jupyter' ? `/w/${ws.team}/${ws.name}/api` : `/w/${ws.team}/${ws.name}/`} HTTP/1.0\r\nHost: localhost\r\n\r\n`);
  });
}

/** How long to wait before the next probe: 25 ms at first, then a fortieth of the time waited so far, at most 100 ms (a few per cent of the wait). */
function probeInterval(waitedMs: number): number {
  return Math.min(100, Math.max(25, waitedMs / 40));
}

/**
 * Waits until the workspace's app answers through its socket. Fails early
 * when the sandbox has stopped (the app exited), or after `timeoutMs`.
 *
 * Asking the runtime whether the sandbox still runs costs a process (`runc
 * list`), which ten starts at once asking twice a second each made the
 * control plane's largest cost; it is asked when a probe finds nothing
 * listening, and every 5 s besides. In a local sandbox the probe's
 * connection waits in the agent's backlog until the app accepts it, so a
 * start usually takes one probe.
 */
export async function readiness(runtime: Runtime, ws: Workspace, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const began = Date.now();
  const deadline = began + timeoutMs;
  let lastCheck = began;
  let endpoint: Endpoint | undefined;
  while (Date.now() < deadline) {
    if (signal.aborted) throw new Error('control plane shutting down');
    endpoint ??= await runtime.endpoint(ws.id, ws.spec.environment.kind === 'shell' ? 'ssh' : 'http').catch(() => undefined);
    const seen = endpoint ? await probe(endpoint, ws) : 'gone';
    if (seen === 'ready') return;
    if (seen === 'gone' || Date.now() - lastCheck >= 5000) {
      lastCheck = Date.now();
      const sandbox = (await runtime.inventory()).find((o) => o.workspaceId === ws.id);
      if (!sandbox || sandbox.phase !== 'running') throw new Error('the app exited before it answered');
      if (seen === 'gone') endpoint = undefined;
    }
    await sleep(probeInterval(Date.now() - began));
  }
  throw new Error(`the app did not answer within ${Math.round(timeoutMs / 1000)}s`);
}

import { setTimeout as sleep } from 'node:timers/promises';
import type { Runtime } from '../runtime/index.js';
import type { Workspace } from '../store/index.js';

/** One probe: an HTTP status line from the app, or the SSH banner from sshd. */
async function probe(runtime: Runtime, ws: Workspace): Promise<boolean> {
  const kind = ws.spec.environment.kind;
  const endpoint = await runtime.endpoint(ws.id, kind === 'shell' ? 'ssh' : 'http');
  const socket = await endpoint.connect();
  return new Promise((resolve) => {
    let data = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 2000);
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

/**
 * Waits until the workspace's app answers through its socket. Fails early
 * when the sandbox has stopped (the app exited), or after `timeoutMs`.
 */
export async function readiness(runtime: Runtime, ws: Workspace, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastCheck = Date.now();
  while (Date.now() < deadline) {
    if (signal.aborted) throw new Error('control plane shutting down');
    if (await probe(runtime, ws).catch(() => false)) return;
    // asking the runtime whether the sandbox still runs costs a process; twice a second is enough
    if (Date.now() - lastCheck >= 500) {
      lastCheck = Date.now();
      const seen = (await runtime.inventory()).find((o) => o.workspaceId === ws.id);
      if (!seen || seen.phase !== 'running') throw new Error('the app exited before it answered');
    }
    // a short fixed interval: apps take about a second, and every poll is a cheap local connect
    await sleep(25);
  }
  throw new Error(`the app did not answer within ${Math.round(timeoutMs / 1000)}s`);
}

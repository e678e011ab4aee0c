import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Child processes and clean-up steps for benchmarks. Every server a benchmark
 * starts is registered here and stopped at the end, also when the run fails
 * or is interrupted, so nothing keeps a port or a CPU busy afterwards.
 */

export interface Managed {
  name: string;
  child: ChildProcess;
  /** where the process's stdout and stderr go */
  logFile: string;
  exited: boolean;
  exitCode: number | null;
}

type Cleanup = { name: string; run: () => Promise<void> | void };
const cleanups: Cleanup[] = [];

/** Registers a clean-up step; steps run last-registered first. Returns a function that runs it now (once). */
export function onCleanup(name: string, run: () => Promise<void> | void): () => Promise<void> {
  const step: Cleanup = { name, run };
  cleanups.push(step);
  return async () => {
    const i = cleanups.indexOf(step);
    if (i < 0) return;
    cleanups.splice(i, 1);
    await step.run();
  };
}

/** Runs every registered clean-up step, newest first, reporting but not stopping at failures. */
export async function cleanupAll(): Promise<void> {
  while (cleanups.length > 0) {
    const step = cleanups.pop()!;
    try {
      await step.run();
    } catch (err) {
      process.stderr.write(`clean-up of ${step.name} failed: ${(err as Error).message}\n`);
    }
  }
}

let signalled = false;
/** Stops everything on Ctrl-C or SIGTERM, then exits with the conventional 128+signal status. */
export function cleanupOnSignals(): void {
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.on(signal, () => {
      if (signalled) return;
      signalled = true;
      process.stderr.write(`\nreceived ${signal}, stopping the servers this run started\n`);
      void cleanupAll().finally(() => process.exit(code));
    });
  }
}

/**
 * Starts a long-running process in its own process group (so that whatever it
 * starts in turn, like JupyterHub's proxy, is stopped with it), its output
 * appended to `logFile`. It is stopped by the clean-up at the latest.
 */
export function startProcess(
  name: string,
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; logFile: string },
): Managed {
  const fd = openSync(opts.logFile, 'a');
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  closeSync(fd);
  const managed: Managed = { name, child, logFile: opts.logFile, exited: false, exitCode: null };
  child.on('exit', (code, signal) => {
    managed.exited = true;
    managed.exitCode = code ?? (signal ? 128 : null);
  });
  child.on('error', (err) => {
    managed.exited = true;
    process.stderr.write(`${name}: ${err.message}\n`);
  });
  onCleanup(name, () => stopProcess(managed));
  return managed;
}

function killGroup(m: Managed, signal: NodeJS.Signals): void {
  if (m.child.pid === undefined) return;
  try {
    process.kill(-m.child.pid, signal);
  } catch {
    // the group is already gone
  }
}

/** Asks the process group to stop (SIGTERM), and kills it after `graceMs`. */
export async function stopProcess(m: Managed, graceMs = 10_000): Promise<void> {
  if (!m.exited) {
    killGroup(m, 'SIGTERM');
    const timer = setTimeout(() => killGroup(m, 'SIGKILL'), graceMs);
    if (!m.exited) await once(m.child, 'exit').catch(() => undefined);
    clearTimeout(timer);
  }
  // Leftovers of the group (a proxy whose parent died first) get no grace.
  killGroup(m, 'SIGKILL');
}

/** Runs a command to completion; rejects with its output when it fails. */
export async function run(
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; inherit?: boolean } = {},
): Promise<string> {
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: opts.inherit ? ['ignore', 'inherit', 'inherit'] : ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${code}${out ? `:\n${out.trim()}` : ''}`);
  return out;
}

/** A TCP port on loopback that was free a moment ago. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const addr = srv.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  srv.close();
  await once(srv, 'close');
  return port;
}

/**
 * Polls `probe` until it returns true; fails early when `proc` exits, and
 * after `timeoutMs` with the hint where to look.
 */
export async function waitUntil(what: string, probe: () => Promise<boolean>, opts: { timeoutMs: number; proc?: Managed }): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    if (opts.proc?.exited) {
      throw new Error(`${opts.proc.name} exited (status ${opts.proc.exitCode}) before ${what}; see ${opts.proc.logFile}`);
    }
    try {
      if (await probe()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${opts.timeoutMs / 1000}s waiting for ${what}${opts.proc ? `; see ${opts.proc.logFile}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

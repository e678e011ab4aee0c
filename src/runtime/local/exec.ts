import { execFile, spawn, type ChildProcessByStdio } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import type { Readable, Writable } from 'node:stream';

export class CommandFailed extends Error {
  constructor(readonly command: string, readonly code: number | null, readonly stderr: string) {
    super(`${command} failed${code === null ? '' : ` (exit ${code})`}: ${stderr.trim().split('\n').slice(-3).join(' ') || 'no output'}`);
  }
}

interface RunOptions {
  timeoutMs?: number;
  input?: string;
}

interface Outcome {
  /** exit code, or null when a signal ended it or it never ran */
  code: number | null;
  signal: string | null;
  /** why it never ran (exec's error), or '' */
  error: string;
  stdout: string;
  stderr: string;
}

const MAX_OUTPUT = 16 << 20;

/**
 * Host commands run by `atrium-agent spawn` (agent/spawn.c), a small process
 * started once: Node forks the whole control plane for each child and blocks
 * its event loop until the child has exec'd, milliseconds per command that
 * grow with the control plane's memory and with the machine's load (ten
 * sandboxes starting at once run dozens). Requests and replies are frames of
 * native-endian 32-bit words, described in spawn.c.
 */
class Spawner {
  private readonly child: ChildProcessByStdio<Writable, Readable, null>;
  private readonly pending = new Map<number, { resolve(o: Outcome): void; reject(e: Error): void }>();
  private nextId = 1;
  /** what has come of the reply being read, in the chunks it came in (joined once whole: outputs can be megabytes) */
  private chunks: Buffer[] = [];
  private bufferedBytes = 0;
  exited = false;

  constructor(agentPath: string) {
    this.child = spawn(agentPath, ['spawn'], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.child.on('error', () => this.gone('could not start'));
    this.child.on('exit', (code, signal) => this.gone(`exited (${signal ?? `status ${code}`})`));
    this.child.stdin.on('error', () => undefined);
    this.child.stdout.on('data', (chunk: Buffer) => this.read(chunk));
    this.idle();
  }

  /** Idle, it keeps nobody's process alive; with commands under way, it does. */
  private idle(): void {
    this.child.unref();
    (this.child.stdout as Readable & { unref?(): void }).unref?.();
  }

  private busy(): void {
    this.child.ref();
    (this.child.stdout as Readable & { ref?(): void }).ref?.();
  }

  private gone(why: string): void {
    this.exited = true;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(new Error(`the command helper (atrium-agent spawn) ${why}`));
    }
  }

  private read(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.length;
    for (;;) {
      if (this.bufferedBytes < 4) return;
      if (this.chunks[0]!.length < 4) this.chunks = [Buffer.concat(this.chunks)];
      const len = this.chunks[0]!.readUInt32LE(0);
      if (this.bufferedBytes < 4 + len) return;
      const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      const f = all.subarray(4, 4 + len);
      const rest = all.subarray(4 + len);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.bufferedBytes = rest.length;
      const id = f.readUInt32LE(0);
      const status = f.readInt32LE(4);
      const signal = f.readInt32LE(8);
      const errno = f.readInt32LE(12);
      const outLen = f.readUInt32LE(16);
      const errLen = f.readUInt32LE(20);
      const outcome: Outcome = {
        code: status < 0 ? null : status,
        signal: signal ? (signalName(signal) ?? `signal ${signal}`) : null,
        error: errno ? (errnoName(errno) ?? `errno ${errno}`) : '',
        stdout: f.toString('utf8', 24, 24 + outLen),
        stderr: f.toString('utf8', 24 + outLen, 24 + outLen + errLen),
      };
      const p = this.pending.get(id);
      this.pending.delete(id);
      if (this.pending.size === 0) this.idle();
      p?.resolve(outcome);
    }
  }

  run(file: string, args: string[], opts: { timeoutMs: number; input?: string; quiet?: boolean }): Promise<Outcome> {
    const id = this.nextId++;
    const input = Buffer.from(opts.input ?? '', 'utf8');
    const strings = Buffer.from([file, file, ...args].map((s) => `${s}\0`).join(''), 'utf8');
    const head = Buffer.alloc(24);
    head.writeUInt32LE(20 + input.length + strings.length, 0);
    head.writeUInt32LE(id, 4);
    head.writeUInt32LE(opts.timeoutMs, 8);
    head.writeUInt32LE(opts.quiet ? 1 : 0, 12);
    head.writeUInt32LE(args.length + 2, 16);
    head.writeUInt32LE(input.length, 20);
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) this.busy();
      this.pending.set(id, { resolve, reject });
      this.child.stdin.write(Buffer.concat([head, input, strings]));
    });
  }

  close(): void {
    this.child.stdin.end();
  }
}

let helperPath: string | undefined;
let spawner: Spawner | undefined;

/**
 * Runs the local runtime's commands through `atrium-agent spawn` from now on
 * (started on first use, and again should it exit).
 */
export function useCommandHelper(agentPath: string): void {
  helperPath = agentPath;
}

/** Ends the command helper once the commands under way are done. */
export function closeCommandHelper(): void {
  spawner?.close();
  spawner = undefined;
  helperPath = undefined;
}

function helper(): Spawner | undefined {
  if (!helperPath || !existsSync(helperPath)) return undefined;
  if (!spawner || spawner.exited) spawner = new Spawner(helperPath);
  return spawner;
}

/** Runs a host command without a shell; rejects with its stderr on failure. */
export async function run(file: string, args: string[], opts: RunOptions = {}): Promise<{ stdout: string; stderr: string }> {
  const command = `${file} ${args[0] ?? ''}`.trim();
  const h = helper();
  if (!h) return runHere(file, args, opts);
  const o = await h.run(file, args, { timeoutMs: opts.timeoutMs ?? 30_000, ...(opts.input !== undefined ? { input: opts.input } : {}) });
  if (o.code === 0) return { stdout: o.stdout, stderr: o.stderr };
  const why = o.error ? `cannot run ${file}: ${o.error}` : o.signal ? `${o.stderr ? `${o.stderr.trimEnd()}\n` : ''}ended by ${o.signal}${o.signal === 'SIGTERM' ? ' (timed out, or wrote too much)' : ''}` : o.stderr;
  throw new CommandFailed(command, o.code, why);
}

function runHere(file: string, args: string[], opts: RunOptions): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { timeout: opts.timeoutMs ?? 30_000, maxBuffer: MAX_OUTPUT }, (err, stdout, stderr) => {
      if (err) reject(new CommandFailed(`${file} ${args[0] ?? ''}`.trim(), typeof err.code === 'number' ? err.code : null, stderr || err.message));
      else resolve({ stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/**
 * Runs a host command with nothing of the caller's for its stdio (all
 * /dev/null) and resolves with its exit code. For what runs inside a
 * sandbox as the workspace user: code there can take over such a process,
 * and with it any descriptor it holds, such as a pipe back to the control plane.
 */
export async function runWithoutOutput(file: string, args: string[], opts: { timeoutMs: number }): Promise<number | null> {
  const h = helper();
  if (h) return (await h.run(file, args, { timeoutMs: opts.timeoutMs, quiet: true }).catch(() => undefined))?.code ?? null;
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: 'ignore', timeout: opts.timeoutMs });
    child.on('error', () => resolve(null));
    child.on('exit', (code) => resolve(code));
  });
}

function signalName(n: number): string | undefined {
  return Object.entries(constants.signals).find(([, v]) => v === n)?.[0];
}

function errnoName(n: number): string | undefined {
  return Object.entries(constants.errno).find(([, v]) => v === n)?.[0];
}

import { execFile, spawn } from 'node:child_process';

export class CommandFailed extends Error {
  constructor(readonly command: string, readonly code: number | null, readonly stderr: string) {
    super(`${command} failed${code === null ? '' : ` (exit ${code})`}: ${stderr.trim().split('\n').slice(-3).join(' ') || 'no output'}`);
  }
}

/** Runs a host command without a shell; rejects with its stderr on failure. */
export function run(file: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
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
export function runWithoutOutput(file: string, args: string[], opts: { timeoutMs: number }): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: 'ignore', timeout: opts.timeoutMs });
    child.on('error', () => resolve(null));
    child.on('exit', (code) => resolve(code));
  });
}

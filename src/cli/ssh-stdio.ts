import { spawn } from 'node:child_process';
import { existsSync, writeSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { CliError, loadCredentials } from './credentials.js';

// `atrium ssh --stdio <ws>`: the OpenSSH ProxyCommand. It starts on every
// connection, so it loads Node's own modules and nothing else: no command
// parser, no schemas.

const NAME = /^(?!.*--)[a-z][a-z0-9-]{0,30}[a-z0-9]$/;

/** `team/ws`, `team.ws`, `atrium.team.ws`, or a bare `ws` in one's own team. */
export function tunnelTarget(ref: string, username: string): { team: string; name: string } | undefined {
  const parts = ref.includes('/') ? ref.split('/') : ref.startsWith('atrium.') ? ref.slice(7).split('.') : ref.split('.');
  if (parts.length === 1 && NAME.test(parts[0]!) && username) return { team: username, name: parts[0]! };
  if (parts.length === 2 && NAME.test(parts[0]!) && NAME.test(parts[1]!)) return { team: parts[0]!, name: parts[1]! };
  return undefined;
}

interface Refusal {
  status: number;
  code: string;
  message: string;
  details: Record<string, unknown>;
}

function say(line: string): void {
  // what the server says may hold anything: only printable text reaches the terminal
  process.stderr.write(`[atrium] ${line.replace(/[\u0000-\u001f\u007f-\u009f]/g, '')}\n`);
}

/** Asks for the tunnel; resolves with the upgraded socket (and bytes already read), or the refusal. */
function upgrade(url: URL, path: string, token: string): Promise<{ socket: Socket; head: Buffer } | Refusal> {
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)({
      host: url.hostname,
      port: url.port || (url.protocol === 'https:' ? 443 : 80),
      path: `${url.pathname.replace(/\/$/, '')}${path}`,
      method: 'GET',
      headers: { authorization: `Bearer ${token}`, connection: 'Upgrade', upgrade: 'ssh', 'user-agent': 'atrium-ssh' },
      agent: false,
    });
    req.on('upgrade', (_res: IncomingMessage, socket: Socket, head: Buffer) => resolve({ socket, head }));
    req.on('response', (res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        let parsed: { error?: { code?: string; message?: string; details?: Record<string, unknown> } } = {};
        try {
          parsed = JSON.parse(body) as typeof parsed;
        } catch {
          // not Atrium's error body
        }
        resolve({ status: res.statusCode ?? 0, code: parsed.error?.code ?? `http_${res.statusCode}`, message: parsed.error?.message ?? `HTTP ${res.statusCode}`, details: parsed.error?.details ?? {} });
      });
    });
    req.on('error', (err) => reject(new CliError(`cannot reach Atrium at ${url.origin}: ${(err as NodeJS.ErrnoException).code ?? err.message}`)));
    req.end();
  });
}

async function api(base: URL, token: string, method: string, path: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${base.origin}${base.pathname.replace(/\/$/, '')}${path}`, { method, headers: { authorization: `Bearer ${token}`, accept: 'application/json' } });
  const data = (await res.json().catch(() => ({}))) as Record<string, unknown> & { error?: { message?: string } };
  if (!res.ok) throw new CliError(data.error?.message ?? `HTTP ${res.status}`, res.status === 401 ? 3 : res.status === 404 ? 4 : 1);
  return data;
}

/** Starts a stopped workspace (when the person may) and waits for it to run, with its progress on stderr. */
async function startAndWait(base: URL, token: string, team: string, name: string, desired: unknown): Promise<void> {
  const path = `/api/v1/teams/${team}/workspaces/${name}`;
  if (desired !== 'running') {
    say(`starting workspace ${team}/${name}`);
    await api(base, token, 'POST', `${path}/start`);
  } else {
    say(`waiting for workspace ${team}/${name} to run`);
  }
  let last = '';
  const deadline = Date.now() + 10 * 60_000;
  while (Date.now() < deadline) {
    const ws = await api(base, token, 'GET', path);
    const phase = String(ws.phase);
    if (phase !== last) {
      if (phase !== 'running') say(`${team}/${name} is ${phase}`);
      last = phase;
    }
    if (phase === 'running') return;
    if (phase === 'failed' && ws.desired === 'running') throw new CliError(`workspace ${team}/${name} failed to start: ${String(ws.reason)}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new CliError(`workspace ${team}/${name} did not start within 10 minutes`);
}

/** The agent binary beside this build (`dist/agent/atrium-agent`), whose `pipe` mode moves the bytes through the kernel. */
const AGENT = fileURLToPath(new URL('../agent/atrium-agent', import.meta.url));

/**
 * Joins stdin and stdout to the socket until either side ends: by handing
 * the socket to `atrium-agent pipe` (splice, no copy through this process)
 * when the agent is here and the connection is plain TCP, else in Node.
 */
function carry(socket: Socket, head: Buffer): Promise<number> {
  if (!(socket instanceof TLSSocket) && existsSync(AGENT)) {
    // what Node has read past the answer goes out first; everything after stays in the kernel for the agent
    socket.pause();
    const early: Buffer[] = [head];
    for (let c = socket.read() as Buffer | null; c !== null; c = socket.read() as Buffer | null) early.push(c);
    (socket as unknown as { _handle?: { readStop?(): void } })._handle?.readStop?.();
    const first = Buffer.concat(early);
    if (first.length > 0) writeSync(1, first);
    return new Promise((resolve) => {
      const child = spawn(AGENT, ['pipe'], { stdio: ['inherit', 'inherit', 'inherit', socket] });
      child.on('error', () => resolve(1));
      child.on('exit', (code) => resolve(code ?? 1));
    });
  }
  return new Promise((resolve) => {
    socket.setNoDelay(true);
    if (head.length > 0) process.stdout.write(head);
    process.stdin.pipe(socket);
    socket.pipe(process.stdout);
    // the last bytes (the exit status, the close) reach ssh before this process exits
    const done = (code: number) => (process.stdout.writableLength === 0 ? resolve(code) : process.stdout.once('drain', () => resolve(code)));
    socket.on('error', () => done(1));
    socket.on('close', () => done(0));
    // ssh closed our input: the other way may still carry its last bytes
    process.stdin.on('end', () => socket.end());
  });
}

/**
 * Runs the tunnel for `args` (`[--stdio] <ws>`); resolves with the exit code.
 * A stopped workspace is started first when the person may start it.
 */
export async function sshStdio(args: string[]): Promise<number> {
  try {
    const refs = args.filter((a) => a !== '--stdio');
    if (refs.length !== 1 || refs[0]!.startsWith('-')) throw new CliError('usage: atrium ssh --stdio <workspace>   (an OpenSSH ProxyCommand; `atrium config-ssh` writes it)', 2);
    const credentials = loadCredentials();
    if (!credentials) throw new CliError('not signed in; run `atrium login <url>` first', 3);
    const target = tunnelTarget(refs[0]!, credentials.username);
    if (!target) throw new CliError(`not a workspace: ${refs[0]} (team/ws, team.ws, atrium.team.ws or ws)`, 2);
    const base = new URL(credentials.url);
    const path = `/api/v1/teams/${target.team}/workspaces/${target.name}/ssh`;
    for (let attempt = 0; ; attempt++) {
      const r = await upgrade(base, path, credentials.token);
      if ('socket' in r) return await carry(r.socket, r.head);
      if (r.code === 'not_running' && attempt === 0) {
        await startAndWait(base, credentials.token, target.team, target.name, r.details.desired);
        continue;
      }
      throw new CliError(`${r.code}: ${r.message}`, r.status === 401 ? 3 : r.status === 404 ? 4 : 1);
    }
  } catch (err) {
    const e = err as CliError;
    process.stderr.write(`atrium: ${e.message.replace(/[\u0000-\u001f\u007f-\u009f]/g, '')}\n`);
    return e.exitCode ?? 1;
  }
}

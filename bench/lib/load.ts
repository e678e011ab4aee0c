import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hrtime } from 'node:process';
import { Client } from 'undici';
import { run } from './proc.js';

/**
 * A closed-loop HTTP load generator: `concurrency` connections, each sending
 * its next request as soon as the previous answer has been read in full.
 *
 * The warm-up runs in this process (undici clients, one keep-alive
 * connection each), where every answer can be checked. The timed requests
 * are sent by wrk, with the same connections and the same requests: the
 * generator shares the machine with the servers it measures, and wrk costs
 * about a tenth of the CPU per request of a Node client (measured here with
 * pages of 27 KB: 100–250 µs per request for undici, whose share of two CPUs
 * slowed the server it measured). wrk times each request from its write to
 * the last byte of the answer. The same generator drives every system a
 * benchmark compares, so differences come from the servers, not the client.
 */

/** In a request's path or body: replaced by a text unique across the run ([a-z0-9-]), e.g. for new names. */
export const UNIQUE = '{unique}';

export interface RequestSpec {
  method: 'GET' | 'POST';
  /** path and query, e.g. `/api/v1/workspaces?limit=50` */
  path: string;
  headers: Record<string, string>;
  body?: string;
}

export interface CallOptions {
  /** http://host:port */
  baseUrl: string;
  concurrency: number;
  /** requests sent and discarded before timing starts (at least this many) */
  warmup: number;
  /**
   * ...and for at least this long: a Node server keeps getting faster for
   * thousands of requests (V8 optimizes the hot paths in tiers), so a fixed
   * count that suits a slow server leaves a fast one timed mid-ramp.
   */
  warmupSeconds: number;
  /** timed requests, at least */
  samples: number;
  expectStatus: number;
  /**
   * The request with sequence number `seq`: the warm-up's, then a list of
   * requests that wrk sends in turn. A path or body may hold `UNIQUE`.
   */
  next(seq: number): RequestSpec;
  /**
   * Checks a warm-up response body (parsed JSON); returns a complaint or
   * undefined. Timed answers are checked for their status only, so checking
   * costs no timed work.
   */
  check?(body: unknown): string | undefined;
}

export interface CallResult {
  /** requests the warm-up took (its floor of requests and of seconds both met) */
  warmupRequests: number;
  /** timed requests: at least the number asked for (wrk runs for a time sized from the warm-up's rate) */
  samples: number;
  errors: number;
  firstError: string | null;
  seconds: number;
  rps: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

const REQUEST_TIMEOUT_MS = 60_000;

interface Answer {
  status: number;
  /** null when the body was read to its end and dropped */
  body: Buffer | null;
}

/**
 * Sends one request and reads the answer to its last byte. The body is kept
 * only when it will be looked at (`keep`, or an unexpected status); a timed
 * answer as expected is read and dropped, so timing costs no buffering.
 */
async function send(client: Client, spec: RequestSpec, keep: boolean, expectStatus: number): Promise<Answer> {
  const res = await client.request({ method: spec.method, path: spec.path, headers: spec.headers, body: spec.body ?? null, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS });
  if (keep || res.statusCode !== expectStatus) return { status: res.statusCode, body: Buffer.from(await res.body.arrayBuffer()) };
  for await (const _ of res.body); // to the last byte; a broken body throws
  return { status: res.statusCode, body: null };
}

/** How many different requests wrk cycles through: enough for the random mix to look random. */
const TIMED_REQUEST_KINDS = 20_000;
const WRK_SCRIPT = new URL('./wrk-requests.lua', import.meta.url).pathname;

interface WrkFigures {
  requests: number;
  durationUs: number;
  bytes: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latencyUs: { mean: number; p50: number; p90: number; p99: number; max: number };
}

/** One request as a line of bench/lib/wrk-requests.lua's file. */
function wrkLine(spec: RequestSpec): string {
  const fields = [spec.method, spec.path, spec.body ?? '', ...Object.entries(spec.headers).map(([k, v]) => `${k}: ${v}`)];
  if (fields.some((f) => /[\t\n\r]/.test(f))) throw new Error(`a request for wrk holds a tab or line break: ${spec.method} ${spec.path}`);
  return fields.join('\t');
}

/** Runs wrk for `seconds` over `specs` in turn and returns its figures. */
async function wrkPhase(baseUrl: string, concurrency: number, seconds: number, specs: RequestSpec[]): Promise<WrkFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'atrium-wrk-'));
  try {
    const file = join(dir, 'requests.tsv');
    writeFileSync(file, `${specs.map(wrkLine).join('\n')}\n`);
    const threads = String(Math.min(2, concurrency));
    const out = await run('wrk', ['-t', threads, '-c', String(concurrency), '-d', `${seconds}s`, '--timeout', `${REQUEST_TIMEOUT_MS / 1000}s`, '-s', WRK_SCRIPT, baseUrl, '--', file]);
    const line = out.split('\n').find((l) => l.startsWith('WRK-RESULT '));
    if (!line) throw new Error(`unexpected wrk output:\n${out}`);
    return JSON.parse(line.slice('WRK-RESULT '.length)) as WrkFigures;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Warms up (in this process, checking answers), then times at least `samples` requests of one call with wrk. */
export async function measureCall(opts: CallOptions): Promise<CallResult> {
  const clients = Array.from({ length: opts.concurrency }, () => new Client(opts.baseUrl, { pipelining: 1, keepAliveTimeout: 60_000 }));
  let seq = 0;
  let errors = 0;
  let firstError: string | null = null;
  const fail = (what: string) => {
    errors++;
    firstError ??= what;
  };
  const unique = (spec: RequestSpec, u: string): RequestSpec => ({
    ...spec,
    path: spec.path.replaceAll(UNIQUE, u),
    ...(spec.body === undefined ? {} : { body: spec.body.replaceAll(UNIQUE, u) }),
  });

  /** Sends at least `count` requests with `concurrency` workers, for at least `minSeconds`, checking each answer. */
  async function warmup(count: number, minSeconds: number): Promise<{ seconds: number; sent: number }> {
    let issued = 0;
    const until = hrtime.bigint() + BigInt(Math.round(minSeconds * 1e9));
    const worker = async (client: Client) => {
      while (issued < count || hrtime.bigint() < until) {
        issued++;
        const n = seq++;
        const spec = unique(opts.next(n), n.toString(36));
        try {
          const answer = await send(client, spec, opts.check !== undefined, opts.expectStatus);
          if (answer.status !== opts.expectStatus) {
            fail(`${spec.method} ${spec.path}: HTTP ${answer.status} ${answer.body?.toString('utf8').slice(0, 300) ?? ''}`);
          } else if (opts.check && answer.body) {
            const complaint = opts.check(JSON.parse(answer.body.toString('utf8')) as unknown);
            if (complaint) fail(`${spec.method} ${spec.path}: ${complaint}`);
          }
        } catch (err) {
          fail(`${spec.method} ${spec.path}: ${(err as Error).message}`);
        }
      }
    };
    const started = hrtime.bigint();
    await Promise.all(clients.map(worker));
    return { seconds: Number(hrtime.bigint() - started) / 1e9, sent: issued };
  }

  let warm: { seconds: number; sent: number };
  try {
    warm = await warmup(opts.warmup, opts.warmupSeconds);
  } finally {
    await Promise.all(clients.map((c) => c.destroy()));
  }
  // the timed requests: the same mix, from where the warm-up left off
  const specs = Array.from({ length: TIMED_REQUEST_KINDS }, () => opts.next(seq++));
  // long enough for `samples` at the warm-up's rate, with room; longer again if that fell short
  let seconds = Math.max(3, Math.ceil((1.25 * opts.samples) / (warm.sent / warm.seconds)));
  let figures = await wrkPhase(opts.baseUrl, opts.concurrency, seconds, specs);
  for (let attempt = 0; figures.requests < opts.samples && attempt < 3; attempt++) {
    seconds = Math.ceil((seconds * 1.25 * opts.samples) / Math.max(1, figures.requests));
    figures = await wrkPhase(opts.baseUrl, opts.concurrency, seconds, specs);
  }
  const e = figures.errors;
  const wrkErrors = e.connect + e.read + e.write + e.status + e.timeout;
  if (wrkErrors > 0) {
    errors += wrkErrors;
    firstError ??= `timed requests: ${e.status} answers not 2xx or 3xx, ${e.connect + e.read + e.write} socket errors, ${e.timeout} timeouts`;
  }
  if (figures.requests < opts.samples) fail(`timed requests: ${figures.requests} in ${seconds} s, fewer than ${opts.samples}`);
  const ms = (us: number) => us / 1000;
  return {
    warmupRequests: warm.sent,
    samples: figures.requests,
    errors,
    firstError,
    seconds: figures.durationUs / 1e6,
    rps: figures.requests / (figures.durationUs / 1e6),
    meanMs: ms(figures.latencyUs.mean),
    p50Ms: ms(figures.latencyUs.p50),
    p90Ms: ms(figures.latencyUs.p90),
    p99Ms: ms(figures.latencyUs.p99),
    maxMs: ms(figures.latencyUs.max),
  };
}

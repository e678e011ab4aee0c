import { hrtime } from 'node:process';
import { Client } from 'undici';

/**
 * A closed-loop HTTP load generator: `concurrency` workers, each on its own
 * keep-alive connection, send the next request as soon as their previous
 * answer has been read in full. Latency is measured per request from the call
 * to the last byte of the response. The generator shares the machine with the
 * servers it measures, so it is kept light: undici clients (about half the CPU
 * per request of node:http), and timed answers read without being kept. The
 * same generator drives every system a benchmark compares, so differences
 * come from the servers, not the client.
 */

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
  /** timed requests */
  samples: number;
  expectStatus: number;
  /** the request with sequence number `seq` (counted across warm-up and timed requests) */
  next(seq: number): RequestSpec;
  /**
   * Checks a warm-up response body (parsed JSON); returns a complaint or
   * undefined. Only warm-up responses are parsed, so checking costs no timed work.
   */
  check?(body: unknown): string | undefined;
}

export interface CallResult {
  /** requests the warm-up took (its floor of requests and of seconds both met) */
  warmupRequests: number;
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

/** Nearest-rank percentile of ascending `sorted`. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** Warms up, then times `samples` requests of one call. */
export async function measureCall(opts: CallOptions): Promise<CallResult> {
  const clients = Array.from({ length: opts.concurrency }, () => new Client(opts.baseUrl, { pipelining: 1, keepAliveTimeout: 60_000 }));
  let seq = 0;
  let errors = 0;
  let firstError: string | null = null;
  const fail = (what: string) => {
    errors++;
    firstError ??= what;
  };

  /**
   * Sends `count` requests with `concurrency` workers, and goes on until
   * `minSeconds` have passed; records latencies (ms) into `latencies` when
   * given. Returns the seconds taken and the requests sent.
   */
  async function phase(count: number, latencies: Float64Array | null, minSeconds = 0): Promise<{ seconds: number; sent: number }> {
    let issued = 0;
    const until = hrtime.bigint() + BigInt(Math.round(minSeconds * 1e9));
    const worker = async (client: Client) => {
      while (issued < count || (minSeconds > 0 && hrtime.bigint() < until)) {
        const slot = issued++;
        const spec = opts.next(seq++);
        const t0 = hrtime.bigint();
        try {
          const check = latencies ? undefined : opts.check;
          const answer = await send(client, spec, check !== undefined, opts.expectStatus);
          if (latencies) latencies[slot] = Number(hrtime.bigint() - t0) / 1e6;
          if (answer.status !== opts.expectStatus) {
            fail(`${spec.method} ${spec.path}: HTTP ${answer.status} ${answer.body?.toString('utf8').slice(0, 300) ?? ''}`);
          } else if (check && answer.body) {
            const complaint = check(JSON.parse(answer.body.toString('utf8')) as unknown);
            if (complaint) fail(`${spec.method} ${spec.path}: ${complaint}`);
          }
        } catch (err) {
          if (latencies) latencies[slot] = Number(hrtime.bigint() - t0) / 1e6;
          fail(`${spec.method} ${spec.path}: ${(err as Error).message}`);
        }
      }
    };
    const started = hrtime.bigint();
    await Promise.all(clients.map(worker));
    return { seconds: Number(hrtime.bigint() - started) / 1e9, sent: issued };
  }

  try {
    const warm = await phase(opts.warmup, null, opts.warmupSeconds);
    const latencies = new Float64Array(opts.samples);
    const { seconds } = await phase(opts.samples, latencies);
    const sorted = latencies.slice().sort();
    const sum = sorted.reduce((a, b) => a + b, 0);
    return {
      warmupRequests: warm.sent,
      samples: opts.samples,
      errors,
      firstError,
      seconds,
      rps: opts.samples / seconds,
      meanMs: sum / sorted.length,
      p50Ms: percentile(sorted, 50),
      p90Ms: percentile(sorted, 90),
      p99Ms: percentile(sorted, 99),
      maxMs: sorted[sorted.length - 1] ?? Number.NaN,
    };
  } finally {
    await Promise.all(clients.map((c) => c.destroy()));
  }
}

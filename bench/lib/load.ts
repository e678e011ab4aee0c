import { Agent, request } from 'node:http';
import { hrtime } from 'node:process';

/**
 * A closed-loop HTTP load generator: `concurrency` workers, each on its own
 * keep-alive connection, send the next request as soon as their previous
 * answer has been read in full. Latency is measured per request from the call
 * to the last byte of the response. The same generator drives every system a
 * benchmark compares, so differences come from the servers, not the client.
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
  /** requests sent and discarded before timing starts */
  warmup: number;
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
  body: Buffer;
}

function send(agent: Agent, base: URL, spec: RequestSpec): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...spec.headers };
    if (spec.body !== undefined) headers['content-length'] = Buffer.byteLength(spec.body);
    const req = request(
      { agent, host: base.hostname, port: base.port, method: spec.method, path: spec.path, headers, timeout: REQUEST_TIMEOUT_MS },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS / 1000}s`)));
    req.on('error', reject);
    req.end(spec.body);
  });
}

/** Nearest-rank percentile of ascending `sorted`. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** Warms up, then times `samples` requests of one call. */
export async function measureCall(opts: CallOptions): Promise<CallResult> {
  const base = new URL(opts.baseUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: opts.concurrency, maxFreeSockets: opts.concurrency, noDelay: true });
  let seq = 0;
  let errors = 0;
  let firstError: string | null = null;
  const fail = (what: string) => {
    errors++;
    firstError ??= what;
  };

  /** Sends `count` requests with `concurrency` workers; records latencies (ms) into `latencies` when given. */
  async function phase(count: number, latencies: Float64Array | null): Promise<number> {
    let issued = 0;
    const worker = async () => {
      while (issued < count) {
        const slot = issued++;
        const spec = opts.next(seq++);
        const t0 = hrtime.bigint();
        try {
          const answer = await send(agent, base, spec);
          if (latencies) latencies[slot] = Number(hrtime.bigint() - t0) / 1e6;
          if (answer.status !== opts.expectStatus) {
            fail(`${spec.method} ${spec.path}: HTTP ${answer.status} ${answer.body.toString('utf8').slice(0, 300)}`);
          } else if (!latencies && opts.check) {
            const complaint = opts.check(JSON.parse(answer.body.toString('utf8')) as unknown);
            if (complaint) fail(`${spec.method} ${spec.path}: ${complaint}`);
          }
        } catch (err) {
          if (latencies) latencies[slot] = Number(hrtime.bigint() - t0) / 1e6;
          fail(`${spec.method} ${spec.path}: ${(err as Error).message}`);
        }
      }
    };
    const started = hrtime.bigint();
    await Promise.all(Array.from({ length: opts.concurrency }, worker));
    return Number(hrtime.bigint() - started) / 1e9;
  }

  try {
    await phase(opts.warmup, null);
    const latencies = new Float64Array(opts.samples);
    const seconds = await phase(opts.samples, latencies);
    const sorted = latencies.slice().sort();
    const sum = sorted.reduce((a, b) => a + b, 0);
    return {
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
    agent.destroy();
  }
}

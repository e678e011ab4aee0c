import type { IncomingMessage, ServerResponse } from 'node:http';
import { Unavailable } from '../domain/index.js';
import { sendError } from '../http/index.js';
import type { Workspace } from '../store/index.js';
import { forwardHeaders, responseHeaders, type ForwardedFrom } from './headers.js';
import type { ProxyMetrics } from './metrics.js';
import type { Upstream, Upstreams } from './upstreams.js';

/**
 * Sends one HTTP request on to a workspace's app and its answer back, with
 * backpressure both ways (the app's side pauses while the client is slow).
 */
export function forwardRequest(
  req: IncomingMessage,
  res: ServerResponse,
  ws: Workspace,
  upstream: Upstream,
  deps: { from: Omit<ForwardedFrom, 'appHeaders'>; metrics: ProxyMetrics; upstreams: Pick<Upstreams, 'refused'> },
): void {
  const { metrics } = deps;
  const started = process.hrtime.bigint();
  const bodiless = req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined;
  const headers = forwardHeaders(req.headers, { ...deps.from, appHeaders: upstream.endpoint.headers }) as Record<string, string | string[]>;
  let inbound = 0;
  let outbound = 0;
  let abort: ((err: Error) => void) | undefined;
  let resume: (() => void) | undefined;
  res.on('drain', () => resume?.());
  res.on('close', () => {
    if (!res.writableFinished) abort?.(new Error('the client went away'));
    metrics.bytes(inbound, outbound);
  });
  if (!bodiless) req.on('data', (chunk: Buffer) => (inbound += chunk.length));
  send(0);

  function send(attempt: number): void {
    let answered = false;
    upstream.pool.dispatch(
      { path: req.url ?? '/', method: (req.method ?? 'GET') as 'GET', headers, body: bodiless ? null : req },
      {
        onConnect(abortRequest) {
          abort = abortRequest;
        },
        onHeaders(status, rawHeaders, resumeRequest, statusText) {
          if (status < 200) return true;
          answered = true;
          resume = resumeRequest;
          metrics.request(status, Number(process.hrtime.bigint() - started) / 1e9);
          res.writeHead(status, statusText, responseHeaders(rawHeaders));
          return true;
        },
        onData(chunk) {
          outbound += chunk.length;
          // false pauses the app's side until the client drains
          return res.write(chunk);
        },
        onComplete() {
          res.end();
        },
        onError(err) {
          // the client went away (and took this request with it): nothing to answer
          if (res.destroyed) return;
          if (answered || res.headersSent) {
            res.destroy();
            return;
          }
          const code = (err as NodeJS.ErrnoException).code;
          // a kept-alive connection the app closed meanwhile: a request without a body is safe to send once more
          if (attempt === 0 && bodiless && (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE')) return send(1);
          // the endpoint went with the sandbox: look it up afresh next time
          if (code === 'ECONNREFUSED' || code === 'ENOENT') deps.upstreams.refused(ws, upstream);
          const refusal = code === 'UND_ERR_HEADERS_TIMEOUT'
            ? new Unavailable('timeout', `workspace ${ws.team}/${ws.name} did not answer in time`)
            : new Unavailable('bad_gateway', `workspace ${ws.team}/${ws.name} is not answering`);
          metrics.request(refusal.status, Number(process.hrtime.bigint() - started) / 1e9);
          sendError(res, refusal);
        },
        onUpgrade() {
          res.destroy();
        },
      },
    );
  }
}

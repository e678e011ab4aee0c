import { STATUS_CODES, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { DomainError } from '../domain/index.js';

/** The uniform error body of design §4: `{"error": {"code", "message", "details"}}`. */
export function errorBody(err: DomainError): string {
  return JSON.stringify({ error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } });
}

/**
 * Answers an HTTP request with an error: the status of its code, the
 * headers that belong with it (Retry-After, expiring cookies) and `extra`.
 */
export function sendError(res: ServerResponse, err: DomainError, extra: OutgoingHttpHeaders = {}): void {
  const body = errorBody(err);
  res.writeHead(err.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...err.headers,
    ...extra,
  });
  res.end(body);
}

/**
 * Answers a request that asked to upgrade (a WebSocket) with the same error
 * as over HTTP, written on the raw socket, and closes it.
 */
export function sendUpgradeError(socket: Duplex, err: DomainError, extra: OutgoingHttpHeaders = {}): void {
  const body = errorBody(err);
  let head = `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? 'Error'}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\nconnection: close\r\n`;
  for (const [k, v] of Object.entries({ ...err.headers, ...extra })) for (const one of [v ?? []].flat()) head += `${k}: ${String(one)}\r\n`;
  socket.end(`${head}\r\n${body}`);
}

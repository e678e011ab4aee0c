import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { SandboxServer } from './sandbox.js';

/** What a browser does with Atrium: raw HTTP exchanges, signing in, and entering a workspace on its own origin. */

export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * One HTTP/1.1 exchange over a raw socket, so the path goes out byte for
 * byte as written (no client-side normalization) and Host can name a
 * workspace origin while the connection goes to loopback.
 */
export function raw(t: SandboxServer, path: string, opts: { host?: string; method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  const port = new URL(t.url).port;
  const head = [`${opts.method ?? 'GET'} ${path} HTTP/1.1`, `host: ${opts.host ?? `127.0.0.1:${port}`}`, 'connection: close'];
  for (const [k, v] of Object.entries(opts.headers ?? {})) head.push(`${k}: ${v}`);
  if (opts.body !== undefined) head.push(`content-length: ${Buffer.byteLength(opts.body)}`, 'content-type: application/json');
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const [status, ...lines] = text.slice(0, split).split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        const k = l.slice(0, i).toLowerCase();
        headers[k] = headers[k] ? `${headers[k]}\n${l.slice(i + 1).trim()}` : l.slice(i + 1).trim();
      }
      let body = text.slice(split + 4);
      if (headers['transfer-encoding'] === 'chunked') {
        let out = '';
        while (body.length) {
          const nl = body.indexOf('\r\n');
          const size = parseInt(body.slice(0, nl), 16);
          if (!size) break;
          out += body.slice(nl + 2, nl + 2 + size);
          body = body.slice(nl + 2 + size + 2);
        }
        body = out;
      }
      resolve({ status: Number(status!.split(' ')[1]), headers, body });
    });
    socket.write(`${head.join('\r\n')}\r\n\r\n${opts.body ?? ''}`);
  });
}

/** Signs in with a password and returns the portal's session cookie. */
export async function session(t: SandboxServer, username: string): Promise<string> {
  const r = await fetch(`${t.url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: `pw-${username}-secret` }) });
  assert.equal(r.status, 200);
  return r.headers.get('set-cookie')!.split(';')[0]!;
}

/** The browser's way in: the portal redirects with a one-time code, the workspace origin turns it into its cookie. */
export async function enter(t: SandboxServer, cookie: string, team: string, ws: string): Promise<{ appCookie: string; host: string }> {
  const port = new URL(t.url).port;
  const first = await raw(t, `/w/${team}/${ws}/`, { headers: { cookie, accept: 'text/html' } });
  assert.equal(first.status, 302, first.body);
  const target = new URL(first.headers.location!);
  assert.equal(target.host, `${ws}--${team}.localhost:${port}`);
  assert.equal(target.pathname, '/_atrium/enter');
  const second = await raw(t, target.pathname + target.search, { host: target.host, headers: { accept: 'text/html' } });
  assert.equal(second.status, 302, second.body);
  assert.equal(second.headers.location, `/w/${team}/${ws}/`);
  const setCookie = second.headers['set-cookie']!;
  assert.match(setCookie, /^__Host-atrium_app=[A-Za-z0-9_-]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+; Secure$/, 'a loopback origin is secure to browsers: a __Host- cookie');
  assert.doesNotMatch(setCookie, /Domain=/i, 'host-only');
  // the code works once
  assert.equal((await raw(t, target.pathname + target.search, { host: target.host })).status, 403);
  return { appCookie: setCookie.split(';')[0]!, host: target.host };
}


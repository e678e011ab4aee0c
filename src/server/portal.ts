import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

/** Where `npm run build` puts the portal: `dist/web` under the package root (this file sits two levels below it, in src/ or dist/). */
export const DEFAULT_PORTAL_DIR = fileURLToPath(new URL('../../dist/web/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

/**
 * The portal's pages run with the user's session, so they load nothing from
 * anywhere else and nothing inline: a workspace's code, served on its own
 * origin, has no way to inject script here.
 */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const SECURITY_HEADERS = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
};

interface Asset {
  body: Buffer;
  gzip: Buffer | undefined;
  type: string;
  etag: string;
  /** content-hashed names never change, so browsers may keep them for good */
  immutable: boolean;
}

export interface Portal {
  /** whether this request is for the portal (a page or one of its assets) rather than the API */
  match(req: IncomingMessage): boolean;
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** whether the built portal was found */
  built: boolean;
}

/** Paths the portal never answers: the API, the proxy's, the issuer's discovery, health and metrics. */
const NOT_PORTAL = /^\/(?:api|w|_atrium|\.well-known)(?:\/|$)|^\/(?:healthz|metrics)(?:\?|$)/;

/**
 * Serves the single-page portal built by Vite: files from `dir` (read once,
 * kept in memory, gzipped when that helps) and `index.html` for every other
 * page path, so `/teams/ml` or `/login?next=…` loads the app, which routes in
 * the browser.
 */
export function createPortal(opts: { dir?: string } = {}): Portal {
  const dir = opts.dir ?? DEFAULT_PORTAL_DIR;
  const assets = new Map<string, Asset>();
  const built = existsSync(join(dir, 'index.html'));
  if (built) {
    for (const file of walk(dir)) {
      const body = readFileSync(file);
      const rel = '/' + relative(dir, file).split(sep).join('/');
      const type = TYPES[extname(file)] ?? 'application/octet-stream';
      const compressible = /^text\/|javascript|json|svg/.test(type) && body.length > 1024;
      const gzip = compressible ? gzipSync(body, { level: 9 }) : undefined;
      assets.set(rel, {
        body,
        gzip: gzip && gzip.length < body.length ? gzip : undefined,
        type,
        etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
        immutable: rel.startsWith('/assets/'),
      });
    }
  }
  const index = assets.get('/index.html');

  return {
    built,
    match(req) {
      return (req.method === 'GET' || req.method === 'HEAD') && !NOT_PORTAL.test(req.url ?? '/');
    },
    handle(req, res) {
      const path = (req.url ?? '/').split('?')[0]!;
      if (!index) return notBuilt(res, dir);
      const asset = assets.get(path);
      if (asset) return send(req, res, asset);
      // a missing file (an old hashed bundle, a typo) is a 404, not the app
      if (path.startsWith('/assets/') || extname(path) !== '') {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS });
        return void res.end('not found\n');
      }
      send(req, res, index);
    },
  };
}

function send(req: IncomingMessage, res: ServerResponse, asset: Asset): void {
  const headers: Record<string, string> = {
    'content-type': asset.type,
    etag: asset.etag,
    'cache-control': asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    vary: 'accept-encoding',
    ...SECURITY_HEADERS,
  };
  if (req.headers['if-none-match'] === asset.etag) {
    res.writeHead(304, headers);
    return void res.end();
  }
  const gzip = asset.gzip && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
  const body = gzip ? asset.gzip! : asset.body;
  if (gzip) headers['content-encoding'] = 'gzip';
  headers['content-length'] = String(body.length);
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

function notBuilt(res: ServerResponse, dir: string): void {
  res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS });
  res.end(`The web portal is not built (no ${join(dir, 'index.html')}). Build it with \`npm run build\`; the API and the CLI work meanwhile.\n`);
}

function* walk(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const file = join(dir, name);
    if (statSync(file).isDirectory()) yield* walk(file);
    else yield file;
  }
}

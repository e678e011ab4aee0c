import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadConfig } from '../src/config/index.js';
import { startServer } from './helpers.js';

const SCRAPE_TOKEN = 'scrape-token-0123456789abcdef';

/** GET /metrics from loopback with the Host and Authorization given. */
function get(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/metrics`, { headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * A TLS-terminating or SSO front proxy on the same machine, as nginx with
 * `proxy_set_header Host $host` would be: every request reaches Atrium from
 * loopback, whoever sent it, with the public name as Host.
 */
async function frontProxy(target: string, publicHost: string): Promise<string> {
  const front: Server = createServer((req: IncomingMessage, res) => {
    const up = request(`${target}${req.url}`, { method: req.method, headers: { ...req.headers, host: publicHost } }, (ures) => {
      res.writeHead(ures.statusCode!, ures.headers);
      ures.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  after(() => front.close());
  return `http://127.0.0.1:${(front.address() as { port: number }).port}`;
}

test('/metrics needs the scrape token or an admin, even from loopback, and answers only to its own names', async () => {
  const t = await startServer({ flags: { publicUrl: 'https://atrium.example.com', 'metrics.token': SCRAPE_TOKEN } });
  const front = await frontProxy(t.url, 'atrium.example.com');
  const user = await t.user('uma');

  // everyone behind the front proxy is "local": that proves nothing
  assert.equal((await get(front, {})).status, 401);
  assert.equal((await get(front, { authorization: 'Bearer not-the-token' })).status, 401);
  const scraped = await get(front, { authorization: `Bearer ${SCRAPE_TOKEN}` });
  assert.equal(scraped.status, 200);
  assert.match(scraped.body, /# TYPE atrium_proxy_requests_total counter/);
  assert.equal((await get(front, { authorization: `Bearer ${t.adminToken}` })).status, 200);
  assert.equal((await get(front, { authorization: `Bearer ${user}` })).status, 403);
  // straight from loopback it is the same
  assert.equal((await get(t.url, {})).status, 401);
  assert.equal((await get(t.url, { authorization: `Bearer ${SCRAPE_TOKEN}` })).status, 200);

  // a page on another name rebound to this machine sends its own name as Host: refused before anything else
  for (const host of ['evil.example', 'evil.example:8080', 'atrium.example.com.evil.example']) {
    const r = await get(t.url, { host, authorization: `Bearer ${SCRAPE_TOKEN}` });
    assert.equal(r.status, 421, host);
    assert.match(r.body, /misdirected_request/);
  }
  // this machine's own names and addresses are fine
  for (const host of ['localhost', '127.0.0.1:9', '[::1]:8080', 'atrium.example.com']) {
    assert.equal((await get(t.url, { host, authorization: `Bearer ${SCRAPE_TOKEN}` })).status, 200, host);
  }
});

test('/metrics configured open answers anyone who reaches it', async () => {
  const t = await startServer({ flags: { 'metrics.open': true } });
  assert.equal((await get(t.url, {})).status, 200);
  assert.equal((await get(t.url, { host: 'evil.example' })).status, 421, 'open does not mean any name');
});

test('the scrape token comes from the config or a file, not both', () => {
  const dir = mkdtempSync(join(tmpdir(), 'atrium-metrics-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'token');
  writeFileSync(file, `${SCRAPE_TOKEN}\n`);
  const flags = { dataDir: dir, 'runtime.kind': 'none' };
  assert.equal(loadConfig({ env: {}, flags: { ...flags, 'metrics.tokenFile': file } }).metrics.token, SCRAPE_TOKEN);
  assert.throws(() => loadConfig({ env: {}, flags: { ...flags, 'metrics.tokenFile': file, 'metrics.token': SCRAPE_TOKEN } }), /both set/);
  assert.throws(() => loadConfig({ env: {}, flags: { ...flags, 'metrics.tokenFile': join(dir, 'missing') } }), /cannot read/);
  writeFileSync(file, 'short');
  assert.throws(() => loadConfig({ env: {}, flags: { ...flags, 'metrics.tokenFile': file } }), /16 to 1024/);
  assert.throws(() => loadConfig({ env: {}, flags: { ...flags, 'metrics.token': 'short' } }), /metrics.token: must NOT have fewer than 16/);
});

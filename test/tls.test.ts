import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadConfig } from '../src/config/index.js';
import { createServer } from '../src/server/index.js';
import { ADMIN_PASSWORD } from './helpers.js';

test('with a certificate configured, Atrium serves HTTPS and marks its cookie Secure', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'atrium-tls-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const config = loadConfig({ env: { ATRIUM_LOG_LEVEL: 'fatal' }, flags: { 'listen.port': 0, 'ssh.port': 0, dataDir: dir, 'tls.cert': cert, 'tls.key': key, 'runtime.kind': 'none' } });
  const server = await createServer(config);
  after(() => server.close());
  await server.identity.bootstrapAdmin('admin', ADMIN_PASSWORD);
  const url = await server.listen();
  assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const res = await new Promise<{ status: number; cookie: string | undefined }>((resolve, reject) => {
    const req = request(`${url}/api/v1/auth/login`, { method: 'POST', ca: readFileSync(cert), headers: { 'content-type': 'application/json' } }, (r) => {
      r.resume();
      resolve({ status: r.statusCode!, cookie: r.headers['set-cookie']?.[0] });
    });
    req.on('error', reject);
    req.end(JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }));
  });
  assert.equal(res.status, 200);
  assert.match(res.cookie!, /; Secure$/);
});

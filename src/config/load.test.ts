import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ConfigError, envKeys, loadConfig } from './load.js';

const dir = mkdtempSync(join(tmpdir(), 'atrium-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('no file, no env: embedded defaults', () => {
  const c = loadConfig({ env: {}, flags: { dataDir: dir } });
  assert.deepEqual(c.listen, { host: '127.0.0.1', port: 8080 });
  assert.deepEqual(c.database, { kind: 'sqlite', file: join(dir, 'atrium.db') });
  assert.deepEqual(c.profiles.map((p) => p.name), ['standard-cpu', 'gpu-training', 'small']);
  const std = c.profiles[0]!.resources;
  assert.deepEqual([std.cpuRequestMilli, std.cpuLimitMilli, std.memoryRequestBytes, std.memoryLimitBytes], [1000, 2000, 2 * 2 ** 30, 4 * 2 ** 30]);
  assert.deepEqual(c.profiles[1]!.resources.gpuType, 't4');
  assert.equal(c.auth.sessionTtlSeconds, 12 * 3600);
});

test('every key has an ATRIUM_* variable; file < env < flags', () => {
  const names = envKeys().map((k) => k.env);
  for (const n of ['ATRIUM_LISTEN_PORT', 'ATRIUM_AUTH_TRUSTED_PROXIES', 'ATRIUM_DATABASE', 'ATRIUM_DEFAULTS_QUOTA_CPU', 'ATRIUM_DEFAULTS_QUOTA_GPU', 'ATRIUM_PROFILES', 'ATRIUM_ADMIN_PASSWORD']) assert.ok(names.includes(n), n);
  const file = join(dir, 'a.yaml');
  writeFileSync(file, 'listen:\n  port: 9000\n  host: 0.0.0.0\nauth:\n  loginAttempts: 4\n');
  const c = loadConfig({ file, env: { ATRIUM_LISTEN_PORT: '9100', ATRIUM_AUTH_TRUSTED_PROXIES: '10.0.0.0/8, 127.0.0.1', ATRIUM_AUTH_HEADER: 'X-User' }, flags: { 'listen.port': 9200, dataDir: dir } });
  assert.equal(c.listen.port, 9200);
  assert.equal(c.listen.host, '0.0.0.0');
  assert.equal(c.auth.loginAttempts, 4);
  assert.deepEqual(c.auth.trustedProxies, ['10.0.0.0/8', '127.0.0.1']);
  assert.equal(c.auth.header, 'x-user');
});

test('errors name the key, the rule and where the value came from', () => {
  assert.throws(() => loadConfig({ env: { ATRIUM_LISTEN_PORT: 'eighty' }, flags: { dataDir: dir } }), (e: Error) => e instanceof ConfigError && /config\.listen\.port: must be integer \(from env ATRIUM_LISTEN_PORT\)/.test(e.message));
  const file = join(dir, 'b.yaml');
  writeFileSync(file, 'listen:\n  prot: 1\n');
  assert.throws(() => loadConfig({ file, env: {} }), /config\.listen: unknown field "prot" \(from file .*b\.yaml\)/);
  writeFileSync(file, 'profiles:\n  - name: big\n    displayName: Big\n    environment: shell\n    cpu: {guarantee: "4", limit: "2"}\n    memory: {guarantee: 1Gi, limit: 1Gi}\n    storage: 1Gi\n');
  assert.throws(() => loadConfig({ file, env: {}, flags: { dataDir: dir } }), /profile big: cpu.guarantee 4 exceeds cpu.limit 2/);
  writeFileSync(file, 'profiles:\n  - name: big\n    displayName: Big\n    environment: gpu\n    cpu: {guarantee: "1", limit: "2"}\n    memory: {guarantee: 1Gi, limit: 1Gi}\n    storage: 1Gi\n');
  assert.throws(() => loadConfig({ file, env: {}, flags: { dataDir: dir } }), /config\.profiles\.0\.environment: does not match any allowed form|must be one of/);
  assert.throws(() => loadConfig({ file: join(dir, 'missing.yaml'), env: {} }), /does not exist/);
  assert.throws(() => loadConfig({ env: { ATRIUM_DATABASE: 'mysql://x' }, flags: { dataDir: dir } }), /config\.database/);
});

test('never is refused where it makes no sense, and means "off" where it is allowed', () => {
  assert.throws(() => loadConfig({ env: { ATRIUM_AUTH_SESSION_TTL: 'never' }, flags: { dataDir: dir } }), /config\.auth\.sessionTtl: must be a duration like 90s, 30m, 12h or 7d \(never is not allowed here\) \(from env ATRIUM_AUTH_SESSION_TTL\)/);
  assert.throws(() => loadConfig({ env: { ATRIUM_RUNTIME_STOP_GRACE: 'never' }, flags: { dataDir: dir } }), /config\.runtime\.stopGrace: must be a duration/);
  const c = loadConfig({ env: { ATRIUM_PROXY_TUNNEL_IDLE_TIMEOUT: 'never', ATRIUM_RUNTIME_IDLE_WARNING: 'never' }, flags: { dataDir: dir } });
  assert.equal(c.proxy.tunnelIdleSeconds, 0);
  assert.equal(c.runtime.idleWarningMs, 0);
});

test('every default comes from the schema: the resolved values are exactly the schema defaults', () => {
  const c = loadConfig({ env: {}, flags: { dataDir: dir } });
  assert.deepEqual(
    [c.auth.sessionTtlSeconds, c.auth.loginWindowSeconds, c.auth.loginBackoffMaxSeconds, c.runtime.stopGraceMs, c.runtime.readinessTimeoutMs, c.runtime.cullEveryMs, c.runtime.idleWarningMs, c.proxy.activityFlushMs, c.proxy.responseTimeoutMs, c.proxy.tunnelStallSeconds, c.proxy.tunnelIdleSeconds],
    [12 * 3600, 15 * 60, 5 * 60, 10_000, 90_000, 60_000, 300_000, 30_000, 300_000, 60, 3600],
  );
  assert.deepEqual(c.runtime.reserve, { cpuMilli: 500, memoryBytes: 2 ** 30 });
});

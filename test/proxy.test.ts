import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { enter, raw, session } from './browser.js';
import { sandboxesAvailable, startSandboxServer } from './sandbox.js';

const available = sandboxesAvailable();

function executeOverWebSocket(url: string, headers: Record<string, string>, code: string): Promise<string> {
  const socket = new WebSocket(url, { headers });
  const msgId = `exec-${Math.random()}`;
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no result from the kernel')), 30_000);
    socket.on('open', () =>
      socket.send(JSON.stringify({
        header: { msg_id: msgId, username: 'test', session: 's1', msg_type: 'execute_request', version: '5.3', date: new Date().toISOString() },
        parent_header: {}, metadata: {}, channel: 'shell',
        content: { code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
      })),
    );
    socket.on('message', (data) => {
      // text frames arrive as one Buffer (the client's default binaryType)
      const m = JSON.parse((data as Buffer).toString());
      if (m.parent_header?.msg_id === msgId && m.msg_type === 'execute_result') {
        clearTimeout(timer);
        socket.close();
        resolve(m.content.data['text/plain']);
      }
    });
    socket.on('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    socket.on('error', reject);
  });
}

/** A WebSocket's answer: 101, or the status and error code of its refusal. */
function upgradeStatus(url: string, headers: Record<string, string>): Promise<{ status: number; code?: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.on('open', () => {
      socket.close();
      resolve({ status: 101 });
    });
    socket.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, code: (JSON.parse(body) as { error: { code: string } }).error.code }));
    });
    socket.on('error', reject);
  });
}

test('the proxy reaches workspaces on their own origins, for the people allowed', { skip: available === true ? false : available }, async (suite) => {
  const t = await startSandboxServer({ 'proxy.activityFlush': '1h' });
  const port = new URL(t.url).port;
  const mia = await t.user('mia');
  const noa = await t.user('noa');
  await t.call('PATCH', '/api/v1/teams/mia/quota', { token: t.adminToken, body: { workspaces: 10 } });
  for (const [token, body] of [[mia, { name: 'nb', profile: 'lab' }], [mia, { name: 'web', profile: 'web' }], [noa, { name: 'web', profile: 'web' }]] as const) {
    const r = await t.call('POST', `/api/v1/teams/${token === mia ? 'mia' : 'noa'}/workspaces`, { token, body });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  for (const ref of ['mia/nb', 'mia/web']) assert.equal((await t.waitPhase(mia, ref, ['running', 'failed'])).phase, 'running');
  assert.equal((await t.waitPhase(noa, 'noa/web', ['running', 'failed'])).phase, 'running');
  const miaSession = await session(t, 'mia');
  const noaSession = await session(t, 'noa');
  const nbHost = `nb--mia.localhost:${port}`;

  let appCookie = '';
  let wsUrl = '';
  const host = nbHost;
  await suite.test('Jupyter through the proxy: contents, a kernel, and 6*7 over its WebSocket', async () => {
    const entered = await enter(t, miaSession, 'mia', 'nb');
    appCookie = entered.appCookie;
    assert.equal(entered.host, nbHost);
    const contents = await raw(t, '/w/mia/nb/api/contents', { host, headers: { cookie: appCookie } });
    assert.equal(contents.status, 200, contents.body);
    assert.equal(JSON.parse(contents.body).type, 'directory');
    const kernel = await raw(t, '/w/mia/nb/api/kernels', { host, method: 'POST', body: '{"name":"python3"}', headers: { cookie: appCookie, origin: `http://${host}` } });
    assert.equal(kernel.status, 201, kernel.body);
    const kernelId = JSON.parse(kernel.body).id as string;
    wsUrl = `ws://127.0.0.1:${port}/w/mia/nb/api/kernels/${kernelId}/channels`;
    assert.equal(await executeOverWebSocket(wsUrl, { host, origin: `http://${host}`, cookie: appCookie }, '6*7'), '42');
    // a bearer token works too (API clients), on the workspace's origin
    const viaToken = await raw(t, '/w/mia/nb/api/contents', { host, headers: { authorization: `Bearer ${mia}` } });
    assert.equal(viaToken.status, 200);
  });

    await suite.test('another person, another origin, another page: refused alike', async () => {
      // noa has no right to connect: the same answer as a workspace that does not exist
      const other = await raw(t, '/w/mia/nb/api/contents', { host, headers: { authorization: `Bearer ${noa}` } });
      const missing = await raw(t, '/w/mia/nope/api/contents', { host: `nope--mia.localhost:${port}`, headers: { authorization: `Bearer ${noa}` } });
      assert.equal(other.status, 404);
      assert.equal(missing.status, 404);
      assert.equal(JSON.parse(other.body).error.code, JSON.parse(missing.body).error.code);
      const viaPortal = await raw(t, '/w/mia/nb/', { headers: { cookie: noaSession, accept: 'text/html' } });
      assert.equal(viaPortal.status, 404);
      // the same refusal over a WebSocket: status and code as over HTTP
      assert.deepEqual(await upgradeStatus(wsUrl, { host, origin: `http://${host}`, authorization: `Bearer ${noa}` }), { status: 404, code: JSON.parse(other.body).error.code });
      // mia's cookie for nb is worth nothing on another workspace's origin, and a Host that does not match the path is refused
      assert.equal((await raw(t, '/w/mia/web/', { host: `web--mia.localhost:${port}`, headers: { cookie: appCookie } })).status, 401);
      assert.equal((await raw(t, '/w/mia/web/', { host, headers: { cookie: appCookie } })).status, 404);
      // the portal's session does not open the app on its origin, and the portal origin never proxies
      assert.equal((await raw(t, '/w/mia/nb/api/contents', { host, headers: { cookie: miaSession } })).status, 401);
      assert.equal((await raw(t, '/w/mia/nb/api/contents', { headers: { cookie: miaSession } })).status, 302);
      // anonymous: API clients get 401 JSON, browsers go to sign in
      const anonymous = await raw(t, '/w/mia/nb/api/contents', { host });
      assert.equal(anonymous.status, 401);
      assert.equal(JSON.parse(anonymous.body).error.code, 'unauthenticated');
      const browser = await raw(t, '/w/mia/nb/tree', { host, headers: { accept: 'text/html' } });
      assert.equal(browser.status, 302);
      assert.equal(browser.headers.location, `http://localhost:${port}/w/mia/nb/tree`);
      const portal = await raw(t, '/w/mia/nb/tree', { headers: { accept: 'text/html' } });
      assert.equal(portal.headers.location, `/login?next=${encodeURIComponent('/w/mia/nb/tree')}`);
    });

    await suite.test('changes and WebSockets from another origin are refused even with the cookie', async () => {
      const evil = 'http://web--noa.localhost:' + port;
      const post = await raw(t, '/w/mia/nb/api/kernels', { host, method: 'POST', body: '{}', headers: { cookie: appCookie, origin: evil } });
      assert.equal(post.status, 403);
      assert.equal(JSON.parse(post.body).error.code, 'csrf');
      const noOrigin = await raw(t, '/w/mia/nb/api/kernels', { host, method: 'POST', body: '{}', headers: { cookie: appCookie } });
      assert.equal(noOrigin.status, 403);
      assert.deepEqual(await upgradeStatus(wsUrl, { host, origin: evil, cookie: appCookie }), { status: 403, code: 'csrf' });
      assert.deepEqual(await upgradeStatus(wsUrl.replace('/api/kernels', '/api%2Fkernels'), { host, origin: `http://${host}`, cookie: appCookie }), { status: 400, code: 'bad_path' });
    });

    await suite.test('open WebSockets count as activity and show in /metrics', async () => {
      const socket = new WebSocket(wsUrl, { headers: { host, origin: `http://${host}`, cookie: appCookie } });
      await new Promise((resolve, reject) => {
        socket.on('open', resolve);
        socket.on('error', reject);
      });
      const metrics = await (await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${t.adminToken}` } })).text();
      assert.match(metrics, /atrium_proxy_open_websockets\{team="mia",workspace="nb"\} 1/);
      assert.match(metrics, /atrium_proxy_requests_total\{code="2xx"\} \d+/);
      assert.match(metrics, /atrium_proxy_response_seconds_count \d+/);
      const before = (await t.call('GET', '/api/v1/teams/mia/workspaces/nb', { token: mia })).body.lastActivityAt;
      await new Promise((r) => setTimeout(r, 20));
      await t.server.proxy.activity.flush();
      const afterFlush = (await t.call('GET', '/api/v1/teams/mia/workspaces/nb', { token: mia })).body.lastActivityAt;
      assert.ok(afterFlush && (!before || afterFlush > before), `last activity moves with an open WebSocket (${before} → ${afterFlush})`);
      socket.close();
    });

  await suite.test('every path-escape vector is refused before it reaches the workspace', async () => {
    const { appCookie, host } = await enter(t, miaSession, 'mia', 'web');
    const vectors: Array<[string, string]> = [
      ['dot-dot', '/w/mia/web/../zq01'],
      ['encoded dot-dot', '/w/mia/web/%2e%2e/zq02'],
      ['upper-case encoded dot-dot', '/w/mia/web/%2E%2E/zq03'],
      ['half-encoded dot-dot', '/w/mia/web/.%2e/zq04'],
      ['dot-dot with encoded slash', '/w/mia/web/..%2fzq05'],
      ['encoded slash', '/w/mia/web/zq06%2f..%2f..%2fnoa'],
      ['double slash', '/w/mia/web//zq07'],
      ['backslash', '/w/mia/web/..\\zq08'],
      ['encoded backslash', '/w/mia/web/%5c..%5czq09'],
      ['double-encoded dot-dot', '/w/mia/web/%252e%252e/zq10'],
      ['dot segment', '/w/mia/web/./zq11'],
      ['encoded dot segment', '/w/mia/web/%2e/zq12'],
      ['NUL', '/w/mia/web/zq13%00'],
      ['malformed escape', '/w/mia/web/%zz/zq14'],
      ['escape out of the team', '/w/mia/../noa/web/zq15'],
      ['overlong UTF-8 dot-dot', '/w/mia/web/%c0%ae%c0%ae/zq16'],
      ['mixed encoding', '/w/mia/web/%2e./%2E%2e/zq17'],
    ];
    const accepted: string[] = [];
    for (const [label, path] of vectors) {
      const r = await raw(t, path, { host, headers: { cookie: appCookie } });
      if (r.status !== 400 && r.status !== 404) accepted.push(`${label} (${path}): ${r.status}`);
    }
    assert.deepEqual(accepted, []);
    // what the app sees: none of Atrium's credentials, the forwarding headers, its own cookies; what it sets stays on its origin
    const echo = await raw(t, '/w/mia/web/echo', { host, headers: { cookie: `${appCookie}; atrium_session=x; __Host-atrium_session=y; __secure-ATRIUM_other=z; theirs=1`, authorization: '', 'x-forwarded-for': '6.6.6.6', connection: 'keep-alive, x-drop', 'x-drop': '1' } });
    assert.equal(echo.status, 200, echo.body);
    const seen = JSON.parse(echo.body) as Record<string, string>;
    assert.equal(seen.cookie, 'theirs=1');
    assert.equal(seen.authorization, undefined);
    assert.equal(seen['x-drop'], undefined, 'headers named in Connection are hop-by-hop');
    assert.equal(seen['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen['x-forwarded-host'], host);
    assert.equal(seen['x-forwarded-prefix'], '/w/mia/web');
    assert.equal(seen['x-forwarded-proto'], 'http');
    assert.equal(seen.host, host);
    // Domain in any spelling browsers accept is removed; Atrium's names and nameless cookies are dropped whole
    assert.deepEqual(echo.headers['set-cookie']!.split('\n'), ['app=1; Path=/', 'spaced=1; Path=/', 'upper=1; Path=/'], 'a Domain attribute would reach the portal');
    // a clean path does reach it, so the log below can show what arrived
    assert.equal((await raw(t, '/w/mia/web/zq-clean', { host, headers: { cookie: `${appCookie}; theirs=1` } })).status, 404);
    let log = '';
    for (let i = 0; i < 50 && !log.includes('zq-clean'); i++) {
      await new Promise((r) => setTimeout(r, 100));
      log = await (await fetch(`${t.url}/api/v1/teams/mia/workspaces/web/logs?tail=500`, { headers: { authorization: `Bearer ${mia}` } })).text();
    }
    assert.match(log, /access "GET \/w\/mia\/web\/zq-clean HTTP\/1.1"/);
    assert.deepEqual(log.match(/zq\d\d/g) ?? [], [], 'no escape vector reached the workspace');
  });

  await suite.test('a stopped workspace shows its state: a page with a start button, or 503 with the phase', async () => {
    await t.call('POST', '/api/v1/teams/mia/workspaces/web/stop', { token: mia });
    await t.waitPhase(mia, 'mia/web', ['stopped']);
    await new Promise((r) => setTimeout(r, 1100)); // the proxy's route cache
    const api = await raw(t, '/w/mia/web/', { host: `web--mia.localhost:${port}`, headers: { authorization: `Bearer ${mia}` } });
    assert.equal(api.status, 503);
    assert.equal(JSON.parse(api.body).error.details.phase, 'stopped');
    const page = await raw(t, '/w/mia/web/', { headers: { cookie: miaSession, accept: 'text/html' } });
    assert.equal(page.status, 503);
    assert.match(page.body, /Start workspace/);
    assert.match(page.headers['content-security-policy']!, /script-src 'nonce-/);
  });
});

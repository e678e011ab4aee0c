import assert from 'node:assert/strict';
import { test } from 'node:test';
import { foreignCookies, forwardHeaders, hostOnlyCookies, listedInConnection, rawHead, responseHeaders } from './headers.js';

const from = { remoteAddress: '10.1.2.3', scheme: 'https', prefix: '/w/ml/lab', authHeader: 'x-sso-user', appHeaders: { authorization: 'token app-secret' } } as const;

test('requests reach the app without hop-by-hop headers, Atrium credentials or client-sent forwarding claims', () => {
  const out = forwardHeaders(
    {
      host: 'lab--ml.apps.test',
      accept: 'text/html',
      connection: 'keep-alive, x-private',
      'x-private': 'hop',
      'keep-alive': 'timeout=5',
      te: 'trailers',
      'transfer-encoding': 'chunked',
      upgrade: 'websocket',
      'proxy-authorization': 'Basic x',
      authorization: 'Bearer atr_person',
      cookie: '__Host-atrium_session=s1; theme=dark; atrium_app=a1; _xsrf=t',
      'x-forwarded-for': '1.1.1.1',
      'x-forwarded-host': 'evil.test',
      'x-sso-user': 'admin',
      'x-custom': 'kept',
    },
    from,
  );
  assert.deepEqual(out, {
    host: 'lab--ml.apps.test',
    accept: 'text/html',
    'x-custom': 'kept',
    cookie: 'theme=dark; _xsrf=t',
    'x-forwarded-for': '10.1.2.3',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'lab--ml.apps.test',
    'x-forwarded-prefix': '/w/ml/lab',
    authorization: 'token app-secret',
  });
});

test("a request carrying only Atrium's cookies reaches the app with no Cookie header at all", () => {
  assert.equal(foreignCookies('__Host-atrium_session=s; atrium_app=a'), undefined);
  assert.equal(foreignCookies(undefined), undefined);
  assert.equal(foreignCookies('=bare; a=1'), 'a=1');
});

test('Connection names extra hop-by-hop headers, except its own keywords', () => {
  assert.deepEqual(listedInConnection('Keep-Alive, X-Trace'), new Set(['keep-alive', 'x-trace']));
  assert.equal(listedInConnection('close'), undefined);
  assert.equal(listedInConnection('Upgrade'), undefined);
  assert.equal(listedInConnection(undefined), undefined);
});

test('app cookies stay on the app host: Domain attributes go in any spelling, nameless and Atrium-named cookies go whole', () => {
  assert.deepEqual(
    hostOnlyCookies([
      'a=1; Path=/; Domain=apps.test; HttpOnly',
      'b=2; DOMAIN =apps.test; Secure',
      'c=3;domain',
      'novalue',
      '=empty-name',
      '__Host-atrium_session=forged; Path=/',
      'atrium_app=forged',
    ]),
    ['a=1; Path=/; HttpOnly', 'b=2; Secure', 'c=3'],
  );
});

test('responses lose hop-by-hop headers and those Connection names; repeated headers join, cookies stay a list', () => {
  const out = responseHeaders(['Content-Type', 'text/html', 'Connection', 'x-secret', 'X-Secret', 'v', 'Keep-Alive', 'timeout=5', 'Vary', 'Accept', 'vary', 'Cookie', 'Set-Cookie', 'a=1; Domain=x', 'Set-Cookie', 'b=2', 'Transfer-Encoding', 'chunked']);
  assert.deepEqual(out, { 'content-type': 'text/html', vary: 'Accept, Cookie', 'set-cookie': ['a=1', 'b=2'] });
  assert.deepEqual(responseHeaders([Buffer.from('X-Bin'), Buffer.from('\xe9', 'latin1')]), { 'x-bin': '\xe9' });
});

test('a raw head for an upgraded socket writes each value of a header on its own line', () => {
  assert.equal(rawHead('HTTP/1.1 101 Switching Protocols', { 'set-cookie': ['a=1', 'b=2'], 'x-one': 'v' }), 'HTTP/1.1 101 Switching Protocols\r\nset-cookie: a=1\r\nset-cookie: b=2\r\nx-one: v\r\n');
});

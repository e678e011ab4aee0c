import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createTunnels } from './relay.js';

const AGENT = fileURLToPath(new URL('../../dist/agent/atrium-agent', import.meta.url));

/** A connected pair of loopback TCP sockets: [the far end, the end a tunnel gets]. */
async function socketPair(): Promise<[Socket, Socket]> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const far = connect(port, '127.0.0.1');
  const near = await accepted;
  server.close();
  return [far, near];
}

function collect(s: Socket): () => string {
  let text = '';
  s.on('data', (c: Buffer) => (text += c.toString()));
  return () => text;
}

async function tunnelRoundTrip(agentPath: string | undefined) {
  const tunnels = createTunnels({ agentPath, log: { warn: () => undefined }, stallSeconds: 0, idleSeconds: 0 });
  after(() => tunnels.close());
  const [browser, clientSide] = await socketPair();
  const [app, appSide] = await socketPair();
  const fromBrowser = collect(app);
  const fromApp = collect(browser);
  // bytes already in flight when the tunnel starts are not lost
  browser.write('early ');
  await new Promise((r) => setTimeout(r, 20));
  const closed = new Promise<[number, number]>((resolve) => void tunnels.connect(clientSide, appSide, (a, b) => resolve([a, b])));
  browser.write('hello app');
  app.write('hello browser');
  // however long the relay takes to start on a loaded machine: wait for the bytes, not for a fixed time
  for (const deadline = Date.now() + 15_000; Date.now() < deadline && (fromBrowser() !== 'early hello app' || fromApp() !== 'hello browser'); ) await new Promise((r) => setTimeout(r, 20));
  assert.equal(fromBrowser(), 'early hello app');
  assert.equal(fromApp(), 'hello browser');
  browser.end();
  app.end();
  assert.deepEqual(await closed, [15, 13]);
  return tunnels.counts;
}

test('tunnels carry bytes both ways and report them when both sides end (in-process)', async () => {
  assert.deepEqual(await tunnelRoundTrip(undefined), { relayed: 0, piped: 1 });
});

test('a relay that dies before taking a tunnel leaves it piped in-process, with nothing lost', async () => {
  assert.deepEqual(await tunnelRoundTrip('/bin/false'), { relayed: 0, piped: 1 });
});

test('tunnels carry bytes both ways and report them when both sides end (atrium-agent relay)', { skip: existsSync(AGENT) ? false : 'needs dist/agent/atrium-agent (scripts/deps.sh)' }, async () => {
  const counts = await tunnelRoundTrip(AGENT);
  // the relay takes the descriptors with pidfd_getfd, which needs the right to trace its parent (root has it)
  if (process.getuid?.() === 0) assert.deepEqual(counts, { relayed: 1, piped: 0 });
});

/** Resolves with how long a tunnel took to be closed, or rejects after `limitMs`. */
function closedWithin(closed: Promise<unknown>, limitMs: number): Promise<number> {
  const started = Date.now();
  return Promise.race([
    closed.then(() => Date.now() - started),
    new Promise<number>((_, reject) => setTimeout(() => reject(new Error(`the tunnel was still open after ${limitMs} ms`)), limitMs)),
  ]);
}

for (const [how, agentPath] of [['in-process', undefined], ['atrium-agent relay', AGENT]] as const) {
  const skip = agentPath && !existsSync(agentPath) ? 'needs dist/agent/atrium-agent (scripts/deps.sh)' : false;

  /** A tunnel between a browser and an app, both far ends returned, with `closed` resolving when it ends. */
  async function openTunnel(timeouts: { stallSeconds: number; idleSeconds: number }) {
    const tunnels = createTunnels({ agentPath, log: { warn: () => undefined }, ...timeouts });
    after(() => tunnels.close());
    const [browser, clientSide] = await socketPair();
    const [app, appSide] = await socketPair();
    for (const s of [browser, app]) s.on('error', () => undefined);
    const closed = new Promise((resolve) => void tunnels.connect(clientSide, appSide, resolve));
    return { tunnels, browser, app, closed };
  }

  test(`a tunnel that carries nothing is closed after the idle timeout (${how})`, { skip }, async () => {
    const { browser, closed } = await openTunnel({ stallSeconds: 0, idleSeconds: 1 });
    const ended = new Promise((resolve) => browser.once('close', resolve));
    const took = await closedWithin(closed, 15_000);
    assert.ok(took >= 900, `closed after ${took} ms, before the idle timeout`);
    await ended;
  });

  test(`a tunnel whose receiver takes nothing is closed after the stall timeout (${how})`, { skip }, async () => {
    const { tunnels, browser, app, closed } = await openTunnel({ stallSeconds: 1, idleSeconds: 0 });
    // the browser stops reading; the app sends more than every buffer between can hold
    browser.pause();
    app.write(Buffer.alloc(16 << 20));
    await closedWithin(closed, 20_000);
    assert.equal(tunnels.size, 0);
  });
}

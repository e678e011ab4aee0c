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
  const tunnels = createTunnels({ agentPath, log: { warn: () => undefined } });
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
  await new Promise((r) => setTimeout(r, 100));
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

test('tunnels carry bytes both ways and report them when both sides end (atrium-agent relay)', { skip: existsSync(AGENT) ? false : 'needs dist/agent/atrium-agent (scripts/deps.sh)' }, async () => {
  const counts = await tunnelRoundTrip(AGENT);
  // the relay takes the descriptors with pidfd_getfd, which needs the right to trace its parent (root has it)
  if (process.getuid?.() === 0) assert.deepEqual(counts, { relayed: 1, piped: 0 });
});

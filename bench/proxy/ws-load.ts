/**
 * WebSocket echo load: N connections, each sending a 100-byte message and
 * waiting for its echo before the next, for D seconds. Prints JSON:
 * { echoes, seconds, perSecond, p50, p99 } (latencies in ms).
 *   node --import tsx ws-load.ts URL CONNECTIONS SECONDS [header:value ...]
 */
import WebSocket from 'ws';

const [url, connArg, secArg, ...headerArgs] = process.argv.slice(2);
const connections = Number(connArg);
const seconds = Number(secArg);
const headers = Object.fromEntries(headerArgs.map((h) => [h.slice(0, h.indexOf(':')), h.slice(h.indexOf(':') + 1)]));
const payload = Buffer.alloc(100, 'x');
const latencies: number[] = [];
let echoes = 0;
let measuring = false;
let stopping = false;

const sockets = await Promise.all(
  Array.from({ length: connections }, () =>
    new Promise<WebSocket>((resolve, reject) => {
      const s = new WebSocket(url!, { headers, perMessageDeflate: false });
      s.once('open', () => resolve(s));
      s.once('error', reject);
      s.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    }),
  ),
);
for (const s of sockets) {
  let sent = 0n;
  const send = () => {
    if (stopping) return;
    sent = process.hrtime.bigint();
    s.send(payload);
  };
  s.on('message', () => {
    if (measuring) {
      echoes++;
      latencies.push(Number(process.hrtime.bigint() - sent) / 1e6);
    }
    send();
  });
  send();
}
// one second of warm-up, then the measured window
await new Promise((r) => setTimeout(r, 1000));
measuring = true;
const start = process.hrtime.bigint();
await new Promise((r) => setTimeout(r, seconds * 1000));
measuring = false;
stopping = true;
const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
for (const s of sockets) s.terminate();
latencies.sort((a, b) => a - b);
const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
process.stdout.write(`${JSON.stringify({ echoes, seconds: elapsed, perSecond: echoes / elapsed, p50: q(0.5), p99: q(0.99) })}\n`);
process.exit(0);

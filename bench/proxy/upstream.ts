/**
 * The small upstream every proxy in bench/proxy forwards to: 100-byte
 * answers at any path ending in /small, 1 MiB at /big, and a WebSocket
 * echo. Run as its own process: `node --import tsx upstream.ts PORT`.
 */
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

const SMALL = Buffer.alloc(100, 'a');
const BIG = Buffer.alloc(1024 * 1024, 'b');
const port = Number(process.argv[2]);

const server = createServer((req, res) => {
  const body = req.url?.endsWith('/big') ? BIG : SMALL;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 120_000;
const wss = new WebSocketServer({ server, perMessageDeflate: false });
wss.on('connection', (socket) => socket.on('message', (data, binary) => socket.send(data, { binary })));
server.listen(port, '127.0.0.1', () => process.stdout.write(`listening ${port}\n`));
